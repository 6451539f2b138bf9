//! Grouping of items by their row of ratings.
//!
//! Two items with the same rating from every rater contribute identically to every
//! coefficient, so the coefficients are computed once per distinct row and scaled by how often
//! it occurs. With r raters and q categories there are at most (q + 1)^r distinct rows, 7,776
//! for 5 raters and 5 categories, however many items there are. Apart from the resampling
//! draws, the cost of a bootstrap replicate is then bounded by the number of possible rows,
//! not by the number of items.
//!
//! Items with no rating are left out: every coefficient here drops them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::domain::ratings::RatingMatrix;

/// Largest number of possible rows, (q + 1)^r, looked up in a flat table instead of a hash map.
const FLAT_TABLE_MAX: u64 = 1 << 16;

/// The distinct non-empty rows of a matrix and how often each occurs.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    n_raters: usize,
    /// Distinct rows in order of first appearance, `n_raters` cells each.
    rows: Vec<Option<u32>>,
    /// Number of items with each distinct row.
    counts: Vec<u64>,
    /// Index of the distinct row of each non-empty item, in item order.
    ///
    /// Indices are `u32`: a matrix with 2^32 non-empty items would need over 32 GiB of cells.
    item_patterns: Vec<u32>,
}

impl Patterns {
    pub(crate) fn from_matrix(m: &RatingMatrix) -> Self {
        let n_raters = m.n_raters();
        let base = m.n_categories() as u64 + 1;
        let key_space = u32::try_from(n_raters).ok().and_then(|exponent| base.checked_pow(exponent));
        let mut builder = Builder::new(n_raters, m.n_items());
        match key_space {
            Some(size) if size <= FLAT_TABLE_MAX => {
                // The key of an all-missing row is 0, so slot 0 is never used.
                let mut table = vec![u32::MAX; size as usize];
                for item in 0..m.n_items() {
                    let row = m.row(item);
                    let key = row_key(row, base);
                    if key == 0 {
                        continue;
                    }
                    let slot = &mut table[key as usize];
                    if *slot == u32::MAX {
                        *slot = builder.push_row(row);
                    }
                    builder.count(*slot);
                }
            }
            Some(_) => {
                let mut index: HashMap<u64, u32, BuildHasherDefault<KeyHasher>> = HashMap::default();
                for item in 0..m.n_items() {
                    let row = m.row(item);
                    let key = row_key(row, base);
                    if key == 0 {
                        continue;
                    }
                    let pattern = match index.get(&key) {
                        Some(&pattern) => pattern,
                        None => {
                            let pattern = builder.push_row(row);
                            index.insert(key, pattern);
                            pattern
                        }
                    };
                    builder.count(pattern);
                }
            }
            None => {
                // Too many raters for a 64-bit key: hash the rows themselves.
                let mut index: HashMap<&[Option<u32>], u32> = HashMap::new();
                for item in 0..m.n_items() {
                    let row = m.row(item);
                    if row.iter().all(Option::is_none) {
                        continue;
                    }
                    let pattern = match index.get(row) {
                        Some(&pattern) => pattern,
                        None => {
                            let pattern = builder.push_row(row);
                            index.insert(row, pattern);
                            pattern
                        }
                    };
                    builder.count(pattern);
                }
            }
        }
        builder.finish()
    }

    pub(crate) fn len(&self) -> usize {
        self.counts.len()
    }

    pub(crate) fn row(&self, pattern: usize) -> &[Option<u32>] {
        &self.rows[pattern * self.n_raters..(pattern + 1) * self.n_raters]
    }

    pub(crate) fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub(crate) fn item_patterns(&self) -> &[u32] {
        &self.item_patterns
    }
}

/// Encodes a row as a base-(q + 1) number: digit 0 is a missing rating, digit c + 1 category c.
fn row_key(row: &[Option<u32>], base: u64) -> u64 {
    row.iter().rev().fold(0u64, |key, cell| key * base + cell.map_or(0, |category| u64::from(category) + 1))
}

struct Builder {
    patterns: Patterns,
}

impl Builder {
    fn new(n_raters: usize, n_items: usize) -> Self {
        Self {
            patterns: Patterns {
                n_raters,
                rows: Vec::new(),
                counts: Vec::new(),
                item_patterns: Vec::with_capacity(n_items),
            },
        }
    }

    /// Adds a distinct row and returns its index.
    fn push_row(&mut self, row: &[Option<u32>]) -> u32 {
        let pattern = self.patterns.counts.len() as u32;
        self.patterns.rows.extend_from_slice(row);
        self.patterns.counts.push(0);
        pattern
    }

    /// Records one more item with row `pattern`.
    fn count(&mut self, pattern: u32) {
        self.patterns.counts[pattern as usize] += 1;
        self.patterns.item_patterns.push(pattern);
    }

    fn finish(self) -> Patterns {
        self.patterns
    }
}

/// Multiplicative hasher for the 64-bit row keys, which are already well spread in their low digits.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        // Fibonacci hashing; the rotation moves the well-mixed high bits to where hashbrown looks.
        self.0 = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ratings::RatingMatrix;

    fn matrix(n_categories: usize, rows: &[Vec<Option<u32>>]) -> RatingMatrix {
        let labels = (0..n_categories).map(|c| format!("c{c}"));
        RatingMatrix::new(RatingMatrix::positional_categories(labels), rows).expect("valid test matrix")
    }

    #[test]
    fn groups_identical_rows_and_skips_empty_items() {
        let m = matrix(3, &[vec![Some(0), Some(1)], vec![None, None], vec![Some(0), Some(1)], vec![Some(2), None]]);
        let patterns = Patterns::from_matrix(&m);
        assert_eq!(patterns.len(), 2);
        assert_eq!(patterns.counts(), &[2, 1]);
        assert_eq!(patterns.item_patterns(), &[0, 0, 1]);
        assert_eq!(patterns.row(1), &[Some(2), None]);
    }

    #[test]
    fn hash_map_grouping_matches_flat_table() {
        // 40 categories and 4 raters give 41^4 possible rows: above the flat table limit.
        let rows: Vec<Vec<Option<u32>>> =
            (0..200u32).map(|i| vec![Some(i % 40), Some((i * 7) % 40), None, Some(i % 3)]).collect();
        let m = matrix(40, &rows);
        let patterns = Patterns::from_matrix(&m);
        assert_eq!(patterns.counts().iter().sum::<u64>(), 200);
        for (item, &pattern) in patterns.item_patterns().iter().enumerate() {
            assert_eq!(patterns.row(pattern as usize), m.row(item));
        }
    }

    #[test]
    fn slice_grouping_handles_many_raters() {
        // 3 categories and 50 raters: 4^50 does not fit in 64 bits.
        let rows: Vec<Vec<Option<u32>>> =
            (0..30u32).map(|i| (0..50u32).map(|r| if r == i { None } else { Some((i + r) % 3) }).collect()).collect();
        let m = matrix(3, &rows);
        let patterns = Patterns::from_matrix(&m);
        assert_eq!(patterns.counts().iter().sum::<u64>(), 30);
        for (item, &pattern) in patterns.item_patterns().iter().enumerate() {
            assert_eq!(patterns.row(pattern as usize), m.row(item));
        }
    }
}
