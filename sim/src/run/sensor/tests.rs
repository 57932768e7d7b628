use super::*;

#[test]
fn same_seed_same_walk_and_it_moves() {
    let walk = |seed| {
        let mut s = Sensor::new(seed);
        (0..200)
            .map(|_| {
                let r = s.read();
                (r.temperature_c.to_bits(), r.humidity_pct.to_bits())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(walk(1), walk(1));
    assert_ne!(walk(1), walk(2));
    let w = walk(1);
    assert!(w.iter().any(|&(t, _)| t != 26.7f32.to_bits()), "it drifts");
}
