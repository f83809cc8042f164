//! The SQLite registry store against the store contract.

use activity_sqlite::SqliteRegistryStore;

#[test]
fn rollouts_pins_and_events() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteRegistryStore::open(
        &dir.path().join("registry.sqlite"),
        &dir.path().join("modules"),
    )
    .expect("open");
    test_support::store_contract::rollouts_pins_and_events(&store);
    test_support::store_contract::a_version_with_its_rollout(&store);
}

#[test]
fn ledger() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteRegistryStore::open(
        &dir.path().join("registry.sqlite"),
        &dir.path().join("modules"),
    )
    .expect("open");
    test_support::store_contract::ledger(&store);
}
