//! Lanes: spread a fetched batch over concurrent lanes by a key (the patient),
//! keeping the batch's order within each lane. Consumers handle a lane in
//! order and lanes side by side, which keeps events about one patient in
//! order while different patients proceed in parallel.

use std::hash::{Hash, Hasher};

/// Splits `items` over at most `lanes` lanes by `key`; items without a key
/// are spread by position (nothing orders them against others). Empty lanes are dropped.
pub fn split_by_key<T, K: Hash>(items: Vec<T>, lanes: usize, key: impl Fn(&T) -> Option<K>) -> Vec<Vec<T>> {
    let lanes = lanes.max(1);
    let mut out: Vec<Vec<T>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match key(&item) {
            Some(k) => k.hash(&mut h),
            None => i.hash(&mut h),
        }
        let lane = (h.finish() % lanes as u64) as usize;
        if let Some(l) = out.get_mut(lane) {
            l.push(item);
        }
    }
    out.retain(|l| !l.is_empty());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_key_same_lane_in_order() {
        let items: Vec<(u32, &str)> = (0..100).map(|i| (i, ["a", "b", "c", "d"][i as usize % 4])).collect();
        let lanes = super::split_by_key(items, 8, |(_, k)| Some(*k));
        for lane in &lanes {
            for key in ["a", "b", "c", "d"] {
                let seq: Vec<u32> = lane.iter().filter(|(_, k)| *k == key).map(|(i, _)| *i).collect();
                assert!(seq.windows(2).all(|w| w[0] < w[1]), "order kept for {key}");
            }
        }
        for key in ["a", "b", "c", "d"] {
            let holding = lanes.iter().filter(|l| l.iter().any(|(_, k)| *k == key)).count();
            assert_eq!(holding, 1, "{key} lives in one lane");
        }
        assert_eq!(lanes.iter().map(Vec::len).sum::<usize>(), 100);
    }
}
