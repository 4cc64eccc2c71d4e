mod quorum;
mod storage;

#[test]
fn cluster_ids_look_like_kafkas() {
    let a = crate::active::new_cluster_id();
    let b = crate::active::new_cluster_id();
    assert_eq!(a.len(), 22);
    assert!(a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_ne!(a, b);
}
mod transport;
