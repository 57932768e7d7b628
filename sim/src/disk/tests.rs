use super::*;

#[test]
fn a_power_cut_keeps_what_was_synced_and_a_seeded_part_of_the_rest() {
    let mut kept = std::collections::BTreeSet::new();
    for seed in 0..20 {
        let d = Disk::new(seed, 2);
        d.state().durable = b"synced".to_vec();
        d.state().cached = b"0123456789".to_vec();
        let lost = d.power_cut();
        let c = d.contents();
        assert!(c.starts_with(b"synced"));
        assert_eq!(c.len() + lost, 16);
        assert!(b"synced0123456789".starts_with(&c), "a prefix, never a mix");
        kept.insert(c.len());
        let again = Disk::new(seed, 2);
        again.state().cached = b"0123456789".to_vec();
        assert_eq!(again.power_cut(), lost, "same seed, same cut");
    }
    assert!(
        kept.len() > 3,
        "the cut falls in different places: {kept:?}"
    );
}

#[test]
fn a_clean_stop_keeps_everything_written() {
    let d = Disk::new(1, 2);
    d.state().cached = b"abc".to_vec();
    d.flush();
    assert_eq!(d.power_cut(), 0);
    assert_eq!(d.contents(), b"abc");
}
