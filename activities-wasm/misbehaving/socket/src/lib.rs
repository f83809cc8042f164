//! A test component that opens a TCP socket: it imports `wasi:sockets`, which the host
//! links (language runtimes import it) but denies every use of, so the connect fails.

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
