//! The HNSW graph itself: storage, insertion and search over slots.
//!
//! Hierarchical navigable small worlds (Malkov and Yashunin): every vector
//! is a node on layer 0 and, with geometrically falling odds, on the layers
//! above; a search descends greedily from the sparse top layer and then
//! walks layer 0 keeping the `ef` best candidates. This file knows slots
//! (dense `u32` node numbers), not keys; [`HnswIndex`](super::HnswIndex)
//! maps keys to slots and decides what runs concurrently.
//!
//! Storage is flat so a search touches few cache lines: all vectors in one
//! array, all layer-0 neighbour lists in another (a count, then up to
//! `2 * M` slots), and the rare upper-layer lists per node. Neighbour
//! entries are atomics: inserts on other threads rewrite lists while
//! searches read them, as in hnswlib, but without a data race. A node's
//! vector, level and key are written once, by the thread that allocated the
//! slot, before any list names the slot (a release store, read with
//! acquire), which is what makes reading them without a lock sound. Only
//! one lock is ever held at a time, so inserts cannot deadlock.
//!
//! Removed nodes stay in the graph as waypoints (the graph keeps its
//! connectivity) and are skipped in results.
//!
//! The hot loops are generic over the dot-product [`Kernel`] and compiled
//! three times, for AVX-512, AVX2 and the baseline CPU; the variant is
//! chosen once, when the graph is made.

use std::cell::UnsafeCell;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

#[cfg(target_arch = "x86_64")]
use super::unit::{Avx2, Avx512};
use super::unit::{Isa, Kernel, Portable};

/// No node is taller than this; the odds of a draw above it are below 10^-30.
pub(crate) const MAX_LEVEL: usize = 30;
const NO_ENTRY: u64 = u64::MAX;
const LEVEL_SEED: u64 = 0x5EED_A6E7_D0C5_0001;

/// A candidate: a slot and its distance to the query (`-dot`: smaller is closer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Near {
    pub distance: f32,
    pub slot: u32,
}

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.distance.total_cmp(&other.distance).then(self.slot.cmp(&other.slot))
    }
}

impl Near {
    /// The candidate as one integer that sorts like (distance, slot), so the
    /// search's heaps compare integers rather than floats.
    #[inline(always)]
    fn packed(distance: f32, slot: u32) -> u64 {
        let bits = distance.to_bits();
        let ordered = if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 };
        (u64::from(ordered) << 32) | u64::from(slot)
    }

    #[inline(always)]
    fn unpacked(packed: u64) -> Near {
        let ordered = (packed >> 32) as u32;
        let bits = if ordered >> 31 == 1 { ordered & 0x7fff_ffff } else { !ordered };
        Near { distance: f32::from_bits(bits), slot: packed as u32 }
    }
}

/// What a search reuses from one call to the next: visit marks and heaps.
#[derive(Default)]
struct Scratch {
    /// `visits[slot] == epoch` when the slot was seen in this search.
    visits: Vec<u16>,
    epoch: u16,
    /// Nodes to expand, nearest first ([`Near::packed`]).
    candidates: BinaryHeap<Reverse<u64>>,
    /// The `ef` nearest accepted nodes, farthest on top ([`Near::packed`]).
    best: BinaryHeap<u64>,
    /// Neighbours of the node being expanded that were not seen before.
    fresh: Vec<u32>,
}

impl Scratch {
    fn begin(&mut self, capacity: usize) {
        if self.visits.len() < capacity {
            self.visits.resize(capacity, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.visits.fill(0);
            self.epoch = 1;
        }
        self.candidates.clear();
        self.best.clear();
    }

    /// Marks `slot` seen; `true` the first time in this search.
    #[inline(always)]
    fn first_visit(&mut self, slot: u32) -> bool {
        let mark = &mut self.visits[slot as usize];
        let first = *mark != self.epoch;
        *mark = self.epoch;
        first
    }
}

/// The graph's fixed shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub dimension: usize,
    /// Neighbours per node on the upper layers ("M").
    pub connectivity: usize,
    pub expansion_add: usize,
}

impl Shape {
    /// Neighbours per node on layer 0.
    fn connectivity0(&self) -> usize {
        self.connectivity * 2
    }
}

pub(crate) struct Graph {
    shape: Shape,
    isa: Isa,
    level_scale: f64,
    capacity: usize,
    /// Slots handed out; slots below this are written or being written.
    allocated: AtomicUsize,
    vectors: Vec<UnsafeCell<f32>>,
    keys: Vec<AtomicU64>,
    levels: Vec<AtomicU8>,
    removed: Vec<AtomicBool>,
    /// Per slot: a count, then `connectivity0` neighbour slots.
    links0: Vec<AtomicU32>,
    /// Per slot of level L > 0: L lists of a count and `connectivity` slots.
    upper: Vec<OnceLock<Box<[AtomicU32]>>>,
    /// Held while a node's neighbour lists are rewritten.
    locks: Vec<Mutex<()>>,
    /// `slot << 8 | level` of the entry point, `NO_ENTRY` while empty.
    entry: AtomicU64,
    entry_lock: Mutex<()>,
    level_draws: AtomicU64,
    scratch: Mutex<Vec<Scratch>>,
}

// SAFETY: `vectors` is the only field that is not Sync by itself. Each
// slot's values are written only by `write_node`, called once by the thread
// that won the slot in `allocate`, before the slot is published (stored
// into a neighbour list or the entry point with release ordering, or handed
// to `HnswIndex`'s key map behind a mutex). Readers reach a slot only
// through those, with acquire ordering, so every read of a slot's vector
// happens after its write and none overlaps it. `grow` takes `&mut self`.
unsafe impl Sync for Graph {}

impl Graph {
    pub(crate) fn new(shape: Shape, capacity: usize) -> Self {
        let mut graph = Graph {
            shape,
            isa: Isa::detect(),
            level_scale: 1.0 / (shape.connectivity as f64).ln(),
            capacity: 0,
            allocated: AtomicUsize::new(0),
            vectors: Vec::new(),
            keys: Vec::new(),
            levels: Vec::new(),
            removed: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: AtomicU64::new(NO_ENTRY),
            entry_lock: Mutex::new(()),
            level_draws: AtomicU64::new(0),
            scratch: Mutex::new(Vec::new()),
        };
        graph.grow(capacity);
        graph
    }

    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    pub(crate) fn isa(&self) -> Isa {
        self.isa
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn allocated(&self) -> usize {
        self.allocated.load(Ordering::Acquire)
    }

    /// Room for `capacity` slots in all.
    pub(crate) fn grow(&mut self, capacity: usize) {
        let capacity = capacity.min(u32::MAX as usize - 1);
        if capacity <= self.capacity {
            return;
        }
        let shape = self.shape;
        self.vectors.resize_with(capacity * shape.dimension, || UnsafeCell::new(0.0));
        self.keys.resize_with(capacity, || AtomicU64::new(0));
        self.levels.resize_with(capacity, || AtomicU8::new(0));
        self.removed.resize_with(capacity, || AtomicBool::new(false));
        self.links0.resize_with(capacity * (1 + shape.connectivity0()), || AtomicU32::new(0));
        self.upper.resize_with(capacity, OnceLock::new);
        self.locks.resize_with(capacity, || Mutex::new(()));
        self.capacity = capacity;
    }

    /// Bytes held by the graph's arrays.
    pub(crate) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        let upper: usize = self.upper[..self.allocated()]
            .iter()
            .filter_map(OnceLock::get)
            .map(|lists| lists.len() * size_of::<AtomicU32>())
            .sum();
        self.vectors.capacity() * size_of::<f32>()
            + self.keys.capacity() * size_of::<u64>()
            + self.levels.capacity()
            + self.removed.capacity()
            + self.links0.capacity() * size_of::<u32>()
            + self.upper.capacity() * size_of::<OnceLock<Box<[AtomicU32]>>>()
            + upper
            + self.locks.capacity() * size_of::<Mutex<()>>()
    }

    /// Claims the next free slot; `None` when the graph must grow first.
    pub(crate) fn allocate(&self) -> Option<u32> {
        let mut next = self.allocated.load(Ordering::Relaxed);
        loop {
            if next >= self.capacity {
                return None;
            }
            match self.allocated.compare_exchange_weak(next, next + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(next as u32),
                Err(now) => next = now,
            }
        }
    }

    #[inline(always)]
    pub(crate) fn vector(&self, slot: u32) -> &[f32] {
        let dimension = self.shape.dimension;
        let cells = &self.vectors[slot as usize * dimension..(slot as usize + 1) * dimension];
        // SAFETY: see `unsafe impl Sync for Graph`: callers only name slots
        // that are published or their own, whose vectors are never written
        // again while `&self` lives.
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), dimension) }
    }

    pub(crate) fn key(&self, slot: u32) -> u64 {
        self.keys[slot as usize].load(Ordering::Acquire)
    }

    pub(crate) fn is_removed(&self, slot: u32) -> bool {
        self.removed[slot as usize].load(Ordering::Acquire)
    }

    pub(crate) fn set_removed(&self, slot: u32, removed: bool) {
        self.removed[slot as usize].store(removed, Ordering::Release);
    }

    fn level(&self, slot: u32) -> usize {
        self.levels[slot as usize].load(Ordering::Acquire) as usize
    }

    /// The neighbour list of `slot` on `level`: a count, then slots.
    #[inline(always)]
    fn links(&self, slot: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let width = 1 + self.shape.connectivity0();
            &self.links0[slot as usize * width..(slot as usize + 1) * width]
        } else {
            let width = 1 + self.shape.connectivity;
            match self.upper[slot as usize].get() {
                Some(lists) if lists.len() >= level * width => &lists[(level - 1) * width..level * width],
                _ => &[],
            }
        }
    }

    #[inline(always)]
    fn distance<K: Kernel>(&self, query: &[f32], slot: u32) -> f32 {
        -K::dot(query, self.vector(slot))
    }

    /// Asks the CPU to start loading `slot`'s vector, every cache line of it.
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(cells) =
            self.vectors.get(slot as usize * self.shape.dimension..(slot as usize + 1) * self.shape.dimension)
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let start = cells.as_ptr() as *const i8;
            for offset in (0..cells.len() * 4).step_by(64) {
                // SAFETY: prefetching is a hint; it never faults, and the
                // addresses lie inside the vector anyway.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// Asks the CPU to start loading `slot`'s neighbour list on `level`.
    #[inline(always)]
    fn prefetch_links(&self, slot: u32, level: usize) {
        #[cfg(target_arch = "x86_64")]
        if level == 0 {
            let width = 1 + self.shape.connectivity0();
            if let Some(list) = self.links0.get(slot as usize * width..(slot as usize + 1) * width) {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                let start = list.as_ptr() as *const i8;
                for offset in (0..width * 4).step_by(64) {
                    // SAFETY: a prefetch is a hint and never faults.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (slot, level);
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
    }

    fn give_back(&self, scratch: Scratch) {
        self.scratch.lock().unwrap_or_else(PoisonError::into_inner).push(scratch);
    }

    fn draw_level(&self) -> usize {
        let draw = splitmix64(LEVEL_SEED ^ self.level_draws.fetch_add(1, Ordering::Relaxed));
        let uniform = ((draw >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1]
        ((-uniform.ln() * self.level_scale) as usize).min(MAX_LEVEL)
    }

    /// Writes a node into its freshly allocated `slot` and links it into
    /// the graph. It is marked removed until the caller publishes it.
    pub(crate) fn insert(&self, slot: u32, key: u64, unit: &[f32]) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` found AVX-512F on this CPU.
            Isa::Avx512 => unsafe { self.insert_avx512(slot, key, unit) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` found AVX2 on this CPU.
            Isa::Avx2 => unsafe { self.insert_avx2(slot, key, unit) },
            _ => self.insert_inline::<Portable>(slot, key, unit),
        }
    }

    /// The `k` (or more, up to `ef`) nearest slots to `query` that `accept`
    /// lets through, nearest first.
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Vec<Near> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` found AVX-512F on this CPU.
            Isa::Avx512 => unsafe { self.search_avx512(query, k, ef, accept) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` found AVX2 on this CPU.
            Isa::Avx2 => unsafe { self.search_avx2(query, k, ef, accept) },
            _ => self.search_inline::<Portable>(query, k, ef, accept),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn insert_avx512(&self, slot: u32, key: u64, unit: &[f32]) {
        self.insert_inline::<Avx512>(slot, key, unit)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn insert_avx2(&self, slot: u32, key: u64, unit: &[f32]) {
        self.insert_inline::<Avx2>(slot, key, unit)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn search_avx512(&self, query: &[f32], k: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Vec<Near> {
        self.search_inline::<Avx512>(query, k, ef, accept)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn search_avx2(&self, query: &[f32], k: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Vec<Near> {
        self.search_inline::<Avx2>(query, k, ef, accept)
    }

    #[inline(always)]
    fn search_inline<K: Kernel>(&self, query: &[f32], k: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Vec<Near> {
        let entry = self.entry.load(Ordering::Acquire);
        if entry == NO_ENTRY || k == 0 {
            return Vec::new();
        }
        let (mut nearest, top) = unpack(entry);
        let mut distance = self.distance::<K>(query, nearest);
        for level in (1..=top).rev() {
            (nearest, distance) = self.greedy::<K>(query, nearest, distance, level);
        }
        let mut scratch = self.take_scratch();
        self.search_layer::<K>(query, nearest, ef.max(k), 0, &mut scratch, accept);
        let mut found: Vec<Near> = scratch.best.drain().map(Near::unpacked).collect();
        self.give_back(scratch);
        found.sort_unstable();
        found.truncate(k);
        found
    }

    #[inline(always)]
    fn insert_inline<K: Kernel>(&self, slot: u32, key: u64, unit: &[f32]) {
        let shape = self.shape;
        let level = self.draw_level();
        self.write_node(slot, key, level, unit);

        let entry = self.entry.load(Ordering::Acquire);
        if entry == NO_ENTRY {
            let _entry = self.entry_lock.lock().unwrap_or_else(PoisonError::into_inner);
            if self.entry.load(Ordering::Acquire) == NO_ENTRY {
                self.entry.store(pack(slot, level), Ordering::Release);
                return;
            }
        }
        let (mut nearest, top) = unpack(self.entry.load(Ordering::Acquire));
        let mut distance = self.distance::<K>(unit, nearest);
        for layer in (level + 1..=top).rev() {
            (nearest, distance) = self.greedy::<K>(unit, nearest, distance, layer);
        }
        let mut scratch = self.take_scratch();
        let mut found = Vec::new();
        for layer in (0..=level.min(top)).rev() {
            self.search_layer::<K>(unit, nearest, shape.expansion_add, layer, &mut scratch, |_| true);
            found.clear();
            found.extend(scratch.best.drain().map(Near::unpacked));
            found.sort_unstable();
            let chosen = self.select::<K>(&found, if layer == 0 { shape.connectivity0() } else { shape.connectivity });
            {
                let _node = self.locks[slot as usize].lock().unwrap_or_else(PoisonError::into_inner);
                let list = self.links(slot, layer);
                for (entry, near) in list[1..].iter().zip(&chosen) {
                    entry.store(near.slot, Ordering::Release);
                }
                list[0].store(chosen.len() as u32, Ordering::Release);
            }
            for near in &chosen {
                self.link_back::<K>(near.slot, slot, layer);
            }
            if let Some(closest) = found.first() {
                nearest = closest.slot;
            }
        }
        self.give_back(scratch);

        if level > top {
            let _entry = self.entry_lock.lock().unwrap_or_else(PoisonError::into_inner);
            if level > unpack(self.entry.load(Ordering::Acquire)).1 {
                self.entry.store(pack(slot, level), Ordering::Release);
            }
        }
    }

    fn write_node(&self, slot: u32, key: u64, level: usize, unit: &[f32]) {
        let dimension = self.shape.dimension;
        for (cell, &value) in self.vectors[slot as usize * dimension..(slot as usize + 1) * dimension].iter().zip(unit)
        {
            // SAFETY: the caller won `slot` in `allocate` and has not published it yet.
            unsafe { *cell.get() = value };
        }
        self.keys[slot as usize].store(key, Ordering::Release);
        self.removed[slot as usize].store(true, Ordering::Release);
        self.levels[slot as usize].store(level as u8, Ordering::Release);
        if level > 0 {
            let lists = (0..level * (1 + self.shape.connectivity)).map(|_| AtomicU32::new(0)).collect();
            let _ = self.upper[slot as usize].set(lists);
        }
    }

    /// Greedy walk on an upper layer: moves to a closer neighbour until none is.
    #[inline(always)]
    fn greedy<K: Kernel>(&self, query: &[f32], mut nearest: u32, mut distance: f32, level: usize) -> (u32, f32) {
        loop {
            let mut moved = false;
            let list = self.links(nearest, level);
            let Some((count, slots)) = list.split_first() else { return (nearest, distance) };
            let count = (count.load(Ordering::Acquire) as usize).min(slots.len());
            for entry in &slots[..count] {
                let slot = entry.load(Ordering::Acquire);
                let candidate = self.distance::<K>(query, slot);
                if candidate < distance {
                    (nearest, distance, moved) = (slot, candidate, true);
                }
            }
            if !moved {
                return (nearest, distance);
            }
        }
    }

    /// Beam search on one layer from `start`, keeping the `ef` nearest
    /// accepted slots in `scratch.best`. Slots `accept` refuses are still
    /// walked through, so a filter does not cut the graph apart.
    #[inline(always)]
    fn search_layer<K: Kernel>(
        &self,
        query: &[f32],
        start: u32,
        ef: usize,
        level: usize,
        scratch: &mut Scratch,
        accept: impl Fn(u32) -> bool,
    ) {
        scratch.begin(self.capacity);
        let distance = self.distance::<K>(query, start);
        scratch.first_visit(start);
        scratch.candidates.push(Reverse(Near::packed(distance, start)));
        let mut bound = f32::INFINITY;
        if accept(start) {
            scratch.best.push(Near::packed(distance, start));
            bound = distance;
        }
        let mut fresh = std::mem::take(&mut scratch.fresh);
        while let Some(Reverse(packed)) = scratch.candidates.pop() {
            let candidate = Near::unpacked(packed);
            if candidate.distance > bound && scratch.best.len() >= ef {
                break;
            }
            // The next node to expand is likely the top of the heap: start
            // loading its neighbour list.
            if let Some(&Reverse(next)) = scratch.candidates.peek() {
                self.prefetch_links(next as u32, level);
            }
            let list = self.links(candidate.slot, level);
            let Some((count, slots)) = list.split_first() else { continue };
            let slots = &slots[..(count.load(Ordering::Acquire) as usize).min(slots.len())];
            // First the neighbours not seen yet, all their loads started at
            // once; then their distances, by which time the data is arriving.
            fresh.clear();
            for entry in slots {
                let slot = entry.load(Ordering::Acquire);
                if scratch.first_visit(slot) {
                    self.prefetch(slot);
                    fresh.push(slot);
                }
            }
            for &slot in &fresh {
                let distance = self.distance::<K>(query, slot);
                if scratch.best.len() < ef || distance < bound {
                    scratch.candidates.push(Reverse(Near::packed(distance, slot)));
                    if accept(slot) {
                        scratch.best.push(Near::packed(distance, slot));
                        if scratch.best.len() > ef {
                            scratch.best.pop();
                        }
                        bound = scratch.best.peek().map_or(f32::INFINITY, |&worst| Near::unpacked(worst).distance);
                    }
                }
            }
        }
        scratch.fresh = fresh;
    }

    /// The neighbour-selection heuristic: from candidates sorted nearest
    /// first, keeps one only if it is closer to the query than to every
    /// neighbour kept so far, so links spread in all directions.
    #[inline(always)]
    fn select<K: Kernel>(&self, sorted: &[Near], max: usize) -> Vec<Near> {
        if sorted.len() <= max {
            return sorted.to_vec();
        }
        let mut kept: Vec<Near> = Vec::with_capacity(max);
        for candidate in sorted {
            if kept.len() >= max {
                break;
            }
            let vector = self.vector(candidate.slot);
            let mut diverse = true;
            for other in &kept {
                if self.distance::<K>(vector, other.slot) < candidate.distance {
                    diverse = false;
                    break;
                }
            }
            if diverse {
                kept.push(*candidate);
            }
        }
        kept
    }

    /// Adds `new` to the neighbour list of `node` on `level`, re-selecting
    /// the list with the heuristic when it is full.
    #[inline(always)]
    fn link_back<K: Kernel>(&self, node: u32, new: u32, level: usize) {
        let _node = self.locks[node as usize].lock().unwrap_or_else(PoisonError::into_inner);
        let list = self.links(node, level);
        let Some((count, slots)) = list.split_first() else { return };
        let used = (count.load(Ordering::Acquire) as usize).min(slots.len());
        if used < slots.len() {
            slots[used].store(new, Ordering::Release);
            count.store(used as u32 + 1, Ordering::Release);
            return;
        }
        let vector = self.vector(node);
        let mut candidates: Vec<Near> = Vec::with_capacity(slots.len() + 1);
        for entry in slots {
            let slot = entry.load(Ordering::Acquire);
            candidates.push(Near { distance: self.distance::<K>(vector, slot), slot });
        }
        candidates.push(Near { distance: self.distance::<K>(vector, new), slot: new });
        candidates.sort_unstable();
        let kept = self.select::<K>(&candidates, slots.len());
        for (entry, near) in slots.iter().zip(&kept) {
            entry.store(near.slot, Ordering::Release);
        }
        count.store(kept.len() as u32, Ordering::Release);
    }

    // -----------------------------------------------------------------------
    // Persistence. Callers hold the index's write lock: nothing changes meanwhile.

    /// The graph as bytes (little-endian), read back by [`Graph::from_bytes`].
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let shape = self.shape;
        let count = self.allocated();
        let mut bytes = Vec::with_capacity(64 + count * (shape.dimension * 4 + (1 + shape.connectivity0()) * 4 + 10));
        for value in
            [shape.dimension as u64, shape.connectivity as u64, count as u64, self.entry.load(Ordering::Acquire)]
        {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        for slot in 0..count as u32 {
            bytes.extend_from_slice(&self.key(slot).to_le_bytes());
            bytes.push(self.level(slot) as u8);
            bytes.push(self.is_removed(slot) as u8);
        }
        for slot in 0..count as u32 {
            for value in self.vector(slot) {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        for entry in &self.links0[..count * (1 + shape.connectivity0())] {
            bytes.extend_from_slice(&entry.load(Ordering::Acquire).to_le_bytes());
        }
        for slot in 0..count as u32 {
            for level in 1..=self.level(slot) {
                for entry in self.links(slot, level) {
                    bytes.extend_from_slice(&entry.load(Ordering::Acquire).to_le_bytes());
                }
            }
        }
        bytes
    }

    /// Reads [`Graph::to_bytes`]' output, checking every count, level and
    /// slot number, so that no damage can make a later search read out of
    /// bounds. Errors say what is wrong.
    pub(crate) fn from_bytes(bytes: &[u8], expansion_add: usize) -> Result<Graph, String> {
        let mut reader = Reader { bytes, at: 0 };
        let dimension = reader.u64()? as usize;
        let connectivity = reader.u64()? as usize;
        let count = reader.u64()? as usize;
        let entry = reader.u64()?;
        if dimension == 0 || dimension > 1 << 16 {
            return Err(format!("dimension {dimension}"));
        }
        if !(2..=1024).contains(&connectivity) {
            return Err(format!("connectivity {connectivity}"));
        }
        // Each slot takes at least 10 + 4 * dimension bytes: a bound on the count before allocating.
        if count > bytes.len() / (10 + 4 * dimension) || count >= u32::MAX as usize {
            return Err(format!("{count} vectors cannot fit in {} bytes", bytes.len()));
        }
        let shape = Shape { dimension, connectivity, expansion_add };
        let mut graph = Graph::new(shape, count.max(1));
        graph.allocated.store(count, Ordering::Release);
        for slot in 0..count {
            let key = reader.u64()?;
            let level = reader.u8()? as usize;
            let removed = reader.u8()?;
            if level > MAX_LEVEL || removed > 1 {
                return Err(format!("slot {slot}: level {level}, removed flag {removed}"));
            }
            *graph.keys[slot].get_mut() = key;
            *graph.levels[slot].get_mut() = level as u8;
            *graph.removed[slot].get_mut() = removed == 1;
        }
        for slot in 0..count {
            let mut squares = 0.0f64;
            for cell in &mut graph.vectors[slot * dimension..(slot + 1) * dimension] {
                let value = reader.f32()?;
                if !value.is_finite() {
                    return Err(format!("slot {slot}: a non-finite value"));
                }
                squares += f64::from(value) * f64::from(value);
                *cell.get_mut() = value;
            }
            if (squares - 1.0).abs() > 1e-3 {
                return Err(format!("slot {slot}: not a unit vector"));
            }
        }
        let check_list = |list: &mut [AtomicU32], slot: usize, level: usize| -> Result<(), String> {
            let (head, slots) = list.split_first_mut().expect("lists have a count");
            let used = *head.get_mut() as usize;
            if used > slots.len() {
                return Err(format!("slot {slot}, level {level}: {used} neighbours, more than {}", slots.len()));
            }
            if let Some(bad) = slots[..used].iter_mut().map(|entry| *entry.get_mut() as usize).find(|&n| n >= count) {
                return Err(format!("slot {slot}, level {level}: neighbour {bad} of {count} slots"));
            }
            Ok(())
        };
        let width0 = 1 + shape.connectivity0();
        for slot in 0..count {
            let list = &mut graph.links0[slot * width0..(slot + 1) * width0];
            for entry in list.iter_mut() {
                *entry.get_mut() = reader.u32()?;
            }
            check_list(list, slot, 0)?;
        }
        let width = 1 + connectivity;
        for slot in 0..count {
            let level = *graph.levels[slot].get_mut() as usize;
            if level == 0 {
                continue;
            }
            let mut lists: Box<[AtomicU32]> = (0..level * width).map(|_| AtomicU32::new(0)).collect();
            for entry in lists.iter_mut() {
                *entry.get_mut() = reader.u32()?;
            }
            for (index, list) in lists.chunks_exact_mut(width).enumerate() {
                check_list(list, slot, index + 1)?;
            }
            let _ = graph.upper[slot].set(lists);
        }
        if reader.at != bytes.len() {
            return Err(format!("{} bytes left over", bytes.len() - reader.at));
        }
        if entry != NO_ENTRY {
            let (slot, level) = unpack(entry);
            if slot as usize >= count || level != graph.level(slot) {
                return Err(format!("entry point {slot} at level {level}"));
            }
        } else if count > 0 {
            return Err("vectors but no entry point".into());
        }
        *graph.entry.get_mut() = entry;
        *graph.level_draws.get_mut() = count as u64;
        Ok(graph)
    }
}

fn pack(slot: u32, level: usize) -> u64 {
    (u64::from(slot) << 8) | level as u64
}

fn unpack(entry: u64) -> (u32, usize) {
    ((entry >> 8) as u32, (entry & 0xff) as usize)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reads little-endian values, failing at the end of the bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.bytes.get(self.at..self.at + N).ok_or("the graph ends early")?;
        self.at += N;
        Ok(bytes.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::unit;

    fn small_graph() -> Graph {
        let shape = Shape { dimension: 4, connectivity: 4, expansion_add: 32 };
        let graph = Graph::new(shape, 300);
        for i in 0..300u32 {
            let angle = i as f32 * 0.1;
            let mut vector = [angle.cos(), angle.sin(), (angle * 0.3).cos(), (angle * 0.7).sin()];
            unit::normalize(&mut vector, 4).unwrap();
            let slot = graph.allocate().unwrap();
            graph.insert(slot, u64::from(i) + 1000, &vector);
            graph.set_removed(slot, false);
        }
        graph
    }

    #[test]
    fn packed_candidates_sort_like_their_distances() {
        let distances = [-1.0f32, -0.5, -0.0, 0.0, 1e-30, 0.25, 1.0, 2.0];
        let packed: Vec<u64> = distances.iter().map(|&d| Near::packed(d, 7)).collect();
        assert!(packed.windows(2).all(|pair| pair[0] <= pair[1]), "{packed:?}");
        for &distance in &distances {
            let near = Near::unpacked(Near::packed(distance, 42));
            assert_eq!((near.distance.to_bits(), near.slot), (distance.to_bits(), 42));
        }
        assert!(Near::packed(0.5, 1) < Near::packed(0.5, 2));
    }

    #[test]
    fn allocation_stops_at_capacity() {
        let graph = Graph::new(Shape { dimension: 2, connectivity: 4, expansion_add: 8 }, 2);
        assert_eq!((graph.allocate(), graph.allocate(), graph.allocate()), (Some(0), Some(1), None));
    }

    #[test]
    fn bytes_roundtrip() {
        let graph = small_graph();
        let bytes = graph.to_bytes();
        let loaded = Graph::from_bytes(&bytes, 32).unwrap();
        assert_eq!(loaded.to_bytes(), bytes);
        let query = graph.vector(17).to_vec();
        let found = loaded.search(&query, 5, 32, &|_| true);
        assert_eq!(found[0].slot, 17);
        assert_eq!(loaded.key(17), 1017);
    }

    #[test]
    fn damaged_bytes_are_refused_without_panicking() {
        let bytes = small_graph().to_bytes();
        for cut in [0, 7, 31, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(Graph::from_bytes(&bytes[..cut], 32).is_err(), "cut at {cut}");
        }
        // A neighbour slot past the end, in the last layer-0 list written.
        let mut bad = bytes.clone();
        let at = 32 + 300 * 10 + 300 * 16 + 4; // first neighbour of slot 0
        bad[at..at + 4].copy_from_slice(&5000u32.to_le_bytes());
        let error = Graph::from_bytes(&bad, 32).err().unwrap();
        assert!(error.contains("neighbour 5000"), "{error}");
        // Any single changed byte parses or fails, never panics.
        for at in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0xA5;
            let _ = Graph::from_bytes(&bad, 32);
        }
    }
}
