//! `java.util.HashMap`'s insertion, resize and tree bins, step by step as the JDK's source
//! (`src/java.base/share/classes/java/util/HashMap.java`, JDK 17) does them, over key indexes.

use std::cmp::Ordering;

use super::{
    Capacity, Entry, JavaKey, Node, Sim, MAXIMUM_CAPACITY, MIN_TREEIFY_CAPACITY, TREEIFY_THRESHOLD,
    UNTREEIFY_THRESHOLD,
};

/// Why a map whose order Java decides by object identity is refused.
pub(super) const IDENTITY_ORDER: &str = "the map's keys collide so that Java orders them by \
     object identity (a tree bin of byte keys of equal hash): their order differs from run to \
     run of the connector and cannot be reproduced";

/// A side of a tree node: where its left or right child hangs.
#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// `HashMap.hash`: the high half spread into the low.
fn spread(h: i32) -> i32 {
    h ^ ((h as u32) >> 16) as i32
}

/// `HashMap.tableSizeFor`: the least power of two ≥ `n`, at least 1.
fn table_size_for(n: usize) -> usize {
    n.max(1).next_power_of_two().min(MAXIMUM_CAPACITY)
}

impl<'k> Sim<'k> {
    pub(super) fn new(keys: &'k [JavaKey], capacity: Capacity) -> Self {
        Self {
            keys,
            nodes: Vec::new(),
            table: Vec::new(),
            tree: Vec::new(),
            threshold: match capacity {
                Capacity::Default => 0,
                Capacity::Sized(n) => table_size_for(n),
            },
            size: 0,
            identity_tie: false,
        }
    }

    fn key(&self, node: usize) -> &JavaKey {
        &self.keys[self.nodes[node].entry.first]
    }

    fn index(&self, hash: i32) -> usize {
        (hash as u32 as usize) & (self.table.len() - 1)
    }

    fn new_node(&mut self, hash: i32, i: usize, next: Option<usize>) -> usize {
        self.nodes.push(Node {
            hash,
            entry: Entry { first: i, last: i },
            next,
            prev: None,
            parent: None,
            left: None,
            right: None,
            red: false,
        });
        self.nodes.len() - 1
    }

    /// `putVal` of the key at `i`.
    pub(super) fn put(&mut self, i: usize) -> Result<(), String> {
        let key = &self.keys[i];
        let hash = spread(key.hash_code());
        if self.table.is_empty() {
            self.resize();
        }
        let bin = self.index(hash);
        match self.table[bin] {
            None => {
                let n = self.new_node(hash, i, None);
                self.table[bin] = Some(n);
            }
            Some(p) if self.nodes[p].hash == hash && self.key(p).java_eq(key) => {
                self.nodes[p].entry.last = i;
                return Ok(());
            }
            Some(_) if self.tree[bin] => {
                if let Some(e) = self.put_tree_val(bin, hash, i)? {
                    self.nodes[e].entry.last = i;
                    return Ok(());
                }
            }
            Some(mut p) => {
                let mut bin_count = 0;
                loop {
                    let Some(e) = self.nodes[p].next else {
                        let n = self.new_node(hash, i, None);
                        self.nodes[p].next = Some(n);
                        if bin_count >= TREEIFY_THRESHOLD - 1 {
                            self.treeify_bin(hash);
                        }
                        break;
                    };
                    if self.nodes[e].hash == hash && self.key(e).java_eq(key) {
                        self.nodes[e].entry.last = i;
                        return Ok(());
                    }
                    p = e;
                    bin_count += 1;
                }
            }
        }
        self.size += 1;
        if self.size > self.threshold {
            self.resize();
        }
        Ok(())
    }

    /// `resize`: makes or doubles the table, splitting each bin in order.
    fn resize(&mut self) {
        let old_cap = self.table.len();
        let old_thr = self.threshold;
        let mut new_thr = 0;
        let new_cap = if old_cap > 0 {
            if old_cap >= MAXIMUM_CAPACITY {
                self.threshold = i32::MAX as usize;
                return;
            }
            let new_cap = old_cap << 1;
            if new_cap < MAXIMUM_CAPACITY && old_cap >= 16 {
                new_thr = old_thr << 1;
            }
            new_cap
        } else if old_thr > 0 {
            old_thr
        } else {
            new_thr = 12;
            16
        };
        if new_thr == 0 {
            // (int)((float)newCap * 0.75f)
            new_thr = (new_cap as f32 * 0.75f32) as usize;
        }
        self.threshold = new_thr;
        let old = std::mem::replace(&mut self.table, vec![None; new_cap]);
        let old_tree = std::mem::replace(&mut self.tree, vec![false; new_cap]);
        for (j, head) in old.into_iter().enumerate() {
            let Some(e) = head else { continue };
            if self.nodes[e].next.is_none() {
                let at = self.index(self.nodes[e].hash);
                self.table[at] = Some(e);
            } else if old_tree[j] {
                self.split(e, j, old_cap);
            } else {
                let (lo, hi) = self.split_list(e, old_cap);
                self.table[j] = lo.first().copied();
                self.table[j + old_cap] = hi.first().copied();
            }
        }
    }

    /// Splits the list from `e` into the nodes whose hash has `bit` clear and set, each relinked
    /// in order (`next`; `prev` too, for tree nodes).
    fn split_list(&mut self, e: usize, bit: usize) -> (Vec<usize>, Vec<usize>) {
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        let mut at = Some(e);
        while let Some(n) = at {
            at = self.nodes[n].next;
            if (self.nodes[n].hash as u32 as usize) & bit == 0 {
                lo.push(n);
            } else {
                hi.push(n);
            }
        }
        for list in [&lo, &hi] {
            self.link(list);
        }
        (lo, hi)
    }

    /// Links `list` by `next` and `prev` in its order.
    fn link(&mut self, list: &[usize]) {
        for (k, &n) in list.iter().enumerate() {
            self.nodes[n].prev = k.checked_sub(1).map(|p| list[p]);
            self.nodes[n].next = list.get(k + 1).copied();
        }
    }

    /// `TreeNode.split`: a tree bin's halves, each a list again when at most
    /// [`UNTREEIFY_THRESHOLD`] long, else a tree (treeified anew if the other half is not empty).
    fn split(&mut self, e: usize, index: usize, bit: usize) {
        let (lo, hi) = self.split_list(e, bit);
        for (list, at, other) in [(&lo, index, &hi), (&hi, index + bit, &lo)] {
            let Some(&head) = list.first() else { continue };
            self.table[at] = Some(head);
            if list.len() <= UNTREEIFY_THRESHOLD {
                self.tree[at] = false;
                for &n in list {
                    let node = &mut self.nodes[n];
                    (node.prev, node.parent, node.left, node.right) = (None, None, None, None);
                }
            } else {
                self.tree[at] = true;
                if !other.is_empty() {
                    self.treeify(head);
                }
            }
        }
    }

    /// `treeifyBin`: a table under [`MIN_TREEIFY_CAPACITY`] doubles instead.
    fn treeify_bin(&mut self, hash: i32) {
        if self.table.len() < MIN_TREEIFY_CAPACITY {
            self.resize();
            return;
        }
        let at = self.index(hash);
        let Some(head) = self.table[at] else { return };
        let mut list = Vec::new();
        let mut e = Some(head);
        while let Some(n) = e {
            list.push(n);
            e = self.nodes[n].next;
        }
        self.link(&list);
        self.tree[at] = true;
        self.treeify(head);
    }

    /// The direction of `k` from `p` in a tree: by hash, then `compareTo`; `None` where Java
    /// would compare further (`find`, `tieBreakOrder`).
    fn direction(&self, hash: i32, k: &JavaKey, p: usize) -> Option<Ordering> {
        let ph = self.nodes[p].hash;
        match ph.cmp(&hash) {
            Ordering::Greater => Some(Ordering::Less),
            Ordering::Less => Some(Ordering::Greater),
            Ordering::Equal => k.compare(self.key(p)).filter(|d| *d != Ordering::Equal),
        }
    }

    /// `tieBreakOrder(k, pk)`: `null` is less than any key (identity hash 0); two keys of one
    /// class are ordered by their identity hashes, which no one can know.
    fn tie_break(&self, k: &JavaKey, p: usize) -> Result<Ordering, String> {
        match (k, self.key(p)) {
            (JavaKey::Null, _) => Ok(Ordering::Less),
            (_, JavaKey::Null) => Ok(Ordering::Greater),
            _ => Err(IDENTITY_ORDER.into()),
        }
    }

    /// `TreeNode.treeify` of the list from `head`, then `moveRootToFront`.
    fn treeify(&mut self, head: usize) {
        let mut root: Option<usize> = None;
        let mut at = Some(head);
        while let Some(x) = at {
            at = self.nodes[x].next;
            self.nodes[x].left = None;
            self.nodes[x].right = None;
            let Some(r) = root else {
                self.nodes[x].parent = None;
                self.nodes[x].red = false;
                root = Some(x);
                continue;
            };
            let (hash, key) = (self.nodes[x].hash, self.key(x).clone());
            let mut p = r;
            loop {
                // Two keys of one bin are distinct: a tie is broken as Java breaks it, or the
                // map is marked as ordered by object identity.
                let dir = match self.direction(hash, &key, p) {
                    Some(d) => d,
                    None => self.tie_break(&key, p).unwrap_or_else(|_| {
                        self.identity_tie = true;
                        Ordering::Less
                    }),
                };
                let next = if dir == Ordering::Greater {
                    self.nodes[p].right
                } else {
                    self.nodes[p].left
                };
                match next {
                    Some(n) => p = n,
                    None => {
                        self.nodes[x].parent = Some(p);
                        if dir == Ordering::Greater {
                            self.nodes[p].right = Some(x);
                        } else {
                            self.nodes[p].left = Some(x);
                        }
                        root = Some(self.balance_insertion(r, x));
                        break;
                    }
                }
            }
        }
        if let Some(r) = root {
            self.move_root_to_front(r);
        }
    }

    fn root_of(&self, mut n: usize) -> usize {
        while let Some(p) = self.nodes[n].parent {
            n = p;
        }
        n
    }

    /// `TreeNode.find` below `p`: the node holding a key equal to the key at `i`.
    fn find(&self, p: Option<usize>, hash: i32, key: &JavaKey) -> Option<usize> {
        let mut p = p?;
        loop {
            let node = &self.nodes[p];
            let (pl, pr) = (node.left, node.right);
            let next = match node.hash.cmp(&hash) {
                Ordering::Greater => pl,
                Ordering::Less => pr,
                Ordering::Equal if self.key(p).java_eq(key) => return Some(p),
                Ordering::Equal if pl.is_none() => pr,
                Ordering::Equal if pr.is_none() => pl,
                Ordering::Equal => match key.compare(self.key(p)) {
                    Some(Ordering::Less) => pl,
                    Some(Ordering::Greater) => pr,
                    _ => {
                        if let Some(q) = self.find(pr, hash, key) {
                            return Some(q);
                        }
                        pl
                    }
                },
            };
            p = next?;
        }
    }

    /// `TreeNode.putTreeVal` in the tree bin `bin`: the node already holding the key, or
    /// `None` once the key's node is linked in (after its tree parent in the bin's order).
    fn put_tree_val(&mut self, bin: usize, hash: i32, i: usize) -> Result<Option<usize>, String> {
        let key = &self.keys[i];
        let root = self.root_of(self.table[bin].unwrap_or_default());
        let mut searched = false;
        let mut p = root;
        loop {
            let node = &self.nodes[p];
            let dir = match node.hash.cmp(&hash) {
                Ordering::Greater => Ordering::Less,
                Ordering::Less => Ordering::Greater,
                Ordering::Equal if self.key(p).java_eq(key) => return Ok(Some(p)),
                Ordering::Equal => match self.direction(hash, key, p) {
                    Some(d) => d,
                    None => {
                        if !searched {
                            searched = true;
                            let (l, r) = (node.left, node.right);
                            if let Some(q) =
                                self.find(l, hash, key).or_else(|| self.find(r, hash, key))
                            {
                                return Ok(Some(q));
                            }
                        }
                        self.tie_break(key, p)?
                    }
                },
            };
            let child = if dir == Ordering::Greater {
                self.nodes[p].right
            } else {
                self.nodes[p].left
            };
            if let Some(c) = child {
                p = c;
                continue;
            }
            let xpn = self.nodes[p].next;
            let x = self.new_node(hash, i, xpn);
            if dir == Ordering::Greater {
                self.nodes[p].right = Some(x);
            } else {
                self.nodes[p].left = Some(x);
            }
            self.nodes[p].next = Some(x);
            self.nodes[x].parent = Some(p);
            self.nodes[x].prev = Some(p);
            if let Some(n) = xpn {
                self.nodes[n].prev = Some(x);
            }
            let root = self.balance_insertion(root, x);
            self.move_root_to_front(root);
            return Ok(None);
        }
    }

    /// `TreeNode.moveRootToFront`.
    fn move_root_to_front(&mut self, root: usize) {
        let at = self.index(self.nodes[root].hash);
        let first = self.table[at];
        if first == Some(root) {
            return;
        }
        self.table[at] = Some(root);
        let (rp, rn) = (self.nodes[root].prev, self.nodes[root].next);
        if let Some(rn) = rn {
            self.nodes[rn].prev = rp;
        }
        if let Some(rp) = rp {
            self.nodes[rp].next = rn;
        }
        if let Some(f) = first {
            self.nodes[f].prev = Some(root);
        }
        self.nodes[root].next = first;
        self.nodes[root].prev = None;
    }

    /// `n`'s child on `side`.
    fn child(&self, n: usize, side: Side) -> Option<usize> {
        match side {
            Side::Left => self.nodes[n].left,
            Side::Right => self.nodes[n].right,
        }
    }

    fn set_child(&mut self, n: usize, side: Side, child: Option<usize>) {
        match side {
            Side::Left => self.nodes[n].left = child,
            Side::Right => self.nodes[n].right = child,
        }
    }

    /// `TreeNode.rotateLeft` (`towards` left) or `rotateRight`: `p`'s child on the other side
    /// takes its place and `p` becomes that child's child on `towards`; the tree's root after.
    fn rotate(&mut self, mut root: usize, p: usize, towards: Side) -> usize {
        let from = towards.other();
        let Some(r) = self.child(p, from) else {
            return root;
        };
        let inner = self.child(r, towards);
        self.set_child(p, from, inner);
        if let Some(inner) = inner {
            self.nodes[inner].parent = Some(p);
        }
        let pp = self.nodes[p].parent;
        self.nodes[r].parent = pp;
        match pp {
            None => {
                root = r;
                self.nodes[r].red = false;
            }
            Some(pp) if self.child(pp, towards) == Some(p) => self.set_child(pp, towards, Some(r)),
            Some(pp) => self.set_child(pp, from, Some(r)),
        }
        self.set_child(r, towards, Some(p));
        self.nodes[p].parent = Some(r);
        root
    }

    /// `TreeNode.balanceInsertion`: the tree's root after `x` is inserted.
    fn balance_insertion(&mut self, mut root: usize, mut x: usize) -> usize {
        self.nodes[x].red = true;
        loop {
            let Some(mut xp) = self.nodes[x].parent else {
                self.nodes[x].red = false;
                return x;
            };
            let xpp = match self.nodes[xp].parent {
                Some(g) if self.nodes[xp].red => g,
                _ => return root,
            };
            // The side of its parent `xp` is on: the JDK's two mirrored branches.
            let side = if self.nodes[xpp].left == Some(xp) {
                Side::Left
            } else {
                Side::Right
            };
            match self.child(xpp, side.other()) {
                Some(uncle) if self.nodes[uncle].red => {
                    self.nodes[uncle].red = false;
                    self.nodes[xp].red = false;
                    self.nodes[xpp].red = true;
                    x = xpp;
                }
                _ => {
                    let mut xpp = Some(xpp);
                    if Some(x) == self.child(xp, side.other()) {
                        x = xp;
                        root = self.rotate(root, x, side);
                        xp = match self.nodes[x].parent {
                            Some(p) => p,
                            None => continue,
                        };
                        xpp = self.nodes[xp].parent;
                    }
                    self.nodes[xp].red = false;
                    if let Some(g) = xpp {
                        self.nodes[g].red = true;
                        root = self.rotate(root, g, side.other());
                    }
                }
            }
        }
    }

    /// The entries in iteration order: bin by bin, each bin by its `next` links.
    pub(super) fn iterate(&self) -> Vec<Entry> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for head in &self.table {
            let mut at = *head;
            while let Some(n) = at {
                out.push(self.nodes[n].entry);
                at = self.nodes[n].next;
            }
        }
        out
    }
}
