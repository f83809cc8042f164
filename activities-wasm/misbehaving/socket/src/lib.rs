//! A test component that opens a TCP socket: it imports `wasi:sockets`, which the host
//! does not offer, so loading it must fail.

wit_bindgen::generate!({ path: "../../../wit", world: "activity-host:testing/socket", generate_all });

struct Socket;

impl Guest for Socket {
    fn connect(address: String) -> Result<(), String> {
        std::net::TcpStream::connect(address)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

export!(Socket);
