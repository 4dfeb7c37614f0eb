//! Gather tables: the index patterns of im2col and col2im, checked once, then run unchecked.

use super::multiversion;

/// A gather pattern: `dst[i] = src[index[i]]` for sources of exactly `src_len` values. The
/// indices are checked once, when the table is made, so the gather itself runs unchecked
/// (it is the inner loop of im2col).
#[derive(Clone, Debug, PartialEq)]
pub struct GatherTable {
    index: Vec<u32>,
    src_len: usize,
}

impl GatherTable {
    /// A table; `None` if an index is not below `src_len`.
    pub fn new(index: Vec<u32>, src_len: usize) -> Option<Self> {
        index
            .iter()
            .all(|&i| (i as usize) < src_len)
            .then_some(GatherTable { index, src_len })
    }

    /// Length of the destination.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// `dst[i] = src[index[i]]`.
    ///
    /// # Panics
    /// If `src` or `dst` has the wrong length.
    pub fn gather(&self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(src.len(), self.src_len, "gather: source length");
        assert_eq!(dst.len(), self.index.len(), "gather: destination length");
        gather_kernel(&self.index, src, dst);
    }

    /// `dst[index[i]] += src[i]` (the adjoint of [`GatherTable::gather`]), in index order.
    ///
    /// # Panics
    /// If `src` or `dst` has the wrong length.
    pub fn scatter_add(&self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(dst.len(), self.src_len, "scatter: destination length");
        assert_eq!(src.len(), self.index.len(), "scatter: source length");
        for (&i, &v) in self.index.iter().zip(src) {
            // SAFETY: every index is below `src_len` (checked in `new`) = `dst.len()` (asserted).
            unsafe { *dst.get_unchecked_mut(i as usize) += v };
        }
    }
}

multiversion! {
    /// The gather loop; callers guarantee every index is in bounds of `src`.
    fn gather_kernel(index: &[u32], src: &[f32], dst: &mut [f32]) {
        for (d, &i) in dst.iter_mut().zip(index) {
            // SAFETY: GatherTable::new checked every index against the source length that
            // GatherTable::gather asserts.
            *d = unsafe { *src.get_unchecked(i as usize) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, at_every_level, random};
    use crate::rng::Rng;

    #[test]
    fn gather_and_scatter_match_reference() {
        at_every_level(|level| {
            let mut rng = Rng::new(21);
            for &src_len in &AWKWARD {
                for &len in &AWKWARD {
                    // Repeated indices too, as im2col has.
                    let index: Vec<u32> = (0..len).map(|_| rng.below(src_len) as u32).collect();
                    let table = GatherTable::new(index.clone(), src_len).unwrap();
                    let src = random(src_len, &mut rng);
                    let mut got = vec![f32::NAN; len];
                    table.gather(&src, &mut got);
                    assert_eq!(got, reference::gather(&index, &src), "{level:?} gather");
                    let cols = random(len, &mut rng);
                    let base = random(src_len, &mut rng);
                    let (mut got, mut want) = (base.clone(), base);
                    table.scatter_add(&cols, &mut got);
                    reference::scatter_add(&index, &cols, &mut want);
                    assert_eq!(got, want, "{level:?} scatter_add");
                }
            }
        });
        assert!(
            GatherTable::new(vec![0, 3], 3).is_none(),
            "an index past the source is refused"
        );
    }
}
