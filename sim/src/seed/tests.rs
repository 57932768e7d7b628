use super::*;

#[test]
fn splitmix64_is_the_reference_function() {
    // SplitMix64 seeded with 0: its first outputs (Vigna's reference implementation).
    assert_eq!(link(0, 0), 0xE220_A839_7B1D_CDAF);
    assert_eq!(link(0, 1), 0x6E78_9E6A_A1B9_65F4);
    assert_eq!(link(0, 2), 0x06C4_5D18_8009_454F);
}

#[test]
fn the_run_streams_are_the_xor_of_their_key() {
    for run in [0, 7, 42, u64::MAX] {
        for (stream, key) in [
            (Stream::Turmoil, 1u64),
            (Stream::Network, 2),
            (Stream::Disk, 3),
            (Stream::Sensor(5), 1_005),
            (Stream::DeviceRng(5), 2_005),
        ] {
            assert_eq!(
                stream.seed(run),
                splitmix64(run ^ key.wrapping_mul(SPLITMIX64_GAMMA))
            );
        }
    }
}

#[test]
fn streams_differ() {
    let run = 42;
    let seeds = [
        Stream::Turmoil.seed(run),
        Stream::Network.seed(run),
        Stream::Disk.seed(run),
        Stream::Sensor(0).seed(run),
        Stream::DeviceRng(0).seed(run),
        link(Stream::Network.seed(run), 0),
        link(Stream::Network.seed(run), 1),
    ];
    let distinct: std::collections::BTreeSet<u64> = seeds.iter().copied().collect();
    assert_eq!(distinct.len(), seeds.len());
}

#[test]
fn every_device_of_a_large_fleet_has_streams_of_its_own() {
    let run = 42;
    let mut seen = std::collections::BTreeSet::new();
    for d in 0..12_000 {
        for s in [
            Stream::Sensor(d),
            Stream::DeviceRng(d),
            Stream::App(d),
            Stream::Start(d),
        ] {
            assert!(seen.insert(s.seed(run)), "{s:?} shares its seed");
        }
    }
    // The historical keys are kept below device 1,000.
    assert_eq!(
        Stream::Sensor(999).seed(run),
        splitmix64(run ^ 1_999u64.wrapping_mul(SPLITMIX64_GAMMA))
    );
}
