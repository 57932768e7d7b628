//! The subscription tree: one node per filter level, `+` and `#` as ordinary child keys that
//! matching treats specially. Ordered maps everywhere, so every walk is deterministic.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::codec::QoS;

#[derive(Debug)]
struct Node<K> {
    children: BTreeMap<Box<str>, Node<K>>,
    /// Subscribers whose filter ends at this node.
    subs: BTreeMap<K, QoS>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: BTreeMap::new(),
            subs: BTreeMap::new(),
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty()
    }
}

/// Filters to subscribers (`K`, e.g. a session number) with their granted QoS.
#[derive(Debug)]
pub struct SubscriptionTree<K> {
    root: Node<K>,
    len: usize,
}

impl<K: Ord + Copy> Default for SubscriptionTree<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Copy> SubscriptionTree<K> {
    /// An empty tree.
    pub fn new() -> Self {
        SubscriptionTree {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of (filter, subscriber) pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No subscriptions at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces `key`'s subscription to the (valid) `filter`. True if it is new.
    pub fn insert(&mut self, filter: &str, key: K, qos: QoS) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        let new = node.subs.insert(key, qos).is_none();
        if new {
            self.len += 1;
        }
        new
    }

    /// Removes `key`'s subscription to `filter`. True if there was one.
    pub fn remove(&mut self, filter: &str, key: K) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_rec(&mut self.root, &levels, key);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Appends every subscription matching topic `name` as (subscriber, granted QoS), in a fixed
    /// order; a subscriber with overlapping filters appears once per filter.
    pub fn matches(&self, name: &str, out: &mut Vec<(K, QoS)>) {
        let levels: Vec<&str> = name.split('/').collect();
        let dollar = name.starts_with('$');
        walk(&self.root, &levels, 0, dollar, out);
    }
}

fn remove_rec<K: Ord>(node: &mut Node<K>, levels: &[&str], key: K) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.subs.remove(&key).is_some();
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_rec(child, rest, key);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn walk<K: Ord + Copy>(
    node: &Node<K>,
    levels: &[&str],
    i: usize,
    dollar: bool,
    out: &mut Vec<(K, QoS)>,
) {
    let wild_ok = !(i == 0 && dollar); // MQTT-4.7.2-1
    if wild_ok {
        if let Some(h) = node.children.get("#") {
            // "a/#" matches "a" and everything below it.
            out.extend(h.subs.iter().map(|(k, q)| (*k, *q)));
        }
    }
    let Some(level) = levels.get(i) else {
        out.extend(node.subs.iter().map(|(k, q)| (*k, *q)));
        return;
    };
    if wild_ok {
        if let Some(p) = node.children.get("+") {
            walk(p, levels, i + 1, dollar, out);
        }
    }
    if *level != "+" && *level != "#" {
        if let Some(c) = node.children.get(*level) {
            walk(c, levels, i + 1, dollar, out);
        }
    }
}

#[cfg(test)]
mod tests;
