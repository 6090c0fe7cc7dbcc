//! Unit vectors: checking what callers pass in, normalising it, and the dot
//! products every search is made of.
//!
//! Both indexes store unit vectors, so cosine similarity is a dot product
//! and a stored vector never has to be normalised again at search time. The
//! checks live here, once, so both indexes refuse the same inputs with the
//! same errors. The norm is summed in `f64` so that vectors with very large
//! components still normalise instead of overflowing to infinity.
//!
//! The crate is built for the baseline x86-64 CPU, so the dot product comes
//! in three kernels chosen at run time ([`Isa::detect`]): AVX-512 and
//! AVX2+FMA written with intrinsics (a 50-dimensional dot product is three
//! fused multiply-adds and a masked fourth), and a portable loop over 16
//! lanes. Code generic over [`Kernel`] inlines the chosen one; it must only
//! run where its instruction set was detected.

use super::VectorError;

/// Checks `vector` is `dimension` finite values, not all zero, and returns
/// it scaled to length one.
pub(crate) fn normalized(vector: &[f32], dimension: usize) -> Result<Vec<f32>, VectorError> {
    let mut unit = vector.to_vec();
    normalize(&mut unit, dimension)?;
    Ok(unit)
}

/// [`normalized`] in place.
pub(crate) fn normalize(vector: &mut [f32], dimension: usize) -> Result<(), VectorError> {
    if vector.len() != dimension {
        return Err(VectorError::DimensionMismatch { expected: dimension, actual: vector.len() });
    }
    let mut squares = 0.0f64;
    for (position, &value) in vector.iter().enumerate() {
        if !value.is_finite() {
            return Err(VectorError::NonFinite { position, value });
        }
        squares += f64::from(value) * f64::from(value);
    }
    if squares == 0.0 {
        return Err(VectorError::ZeroVector);
    }
    let scale = 1.0 / squares.sqrt();
    for value in vector.iter_mut() {
        *value = (f64::from(*value) * scale) as f32;
    }
    Ok(())
}

/// The dot product of two vectors of the same length.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (a_chunks, a_rest) = a.as_chunks::<16>();
    let (b_chunks, b_rest) = b.as_chunks::<16>();
    let mut lanes = [0.0f32; 16];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..16 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let mut sum = 0.0;
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    // Pairwise, so the compiler reduces the lanes with vector shuffles.
    let mut width = 8;
    while width > 0 {
        for lane in 0..width {
            lanes[lane] += lanes[lane + width];
        }
        width /= 2;
    }
    lanes[0] + sum
}

/// The widest SIMD instruction set this CPU offers among those the hot
/// loops are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Portable,
    Avx2,
    Avx512,
}

impl Isa {
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2+fma",
            Isa::Avx512 => "avx512f",
        }
    }
}

/// A dot-product kernel. Code generic over it is instantiated once per
/// instruction set, inside a function compiled for that set.
pub(crate) trait Kernel {
    fn dot(a: &[f32], b: &[f32]) -> f32;
}

/// The kernel for any CPU.
pub(crate) struct Portable;

impl Kernel for Portable {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
}

/// The AVX-512 kernel: only for code that runs where [`Isa::Avx512`] was detected.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx512 {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: this kernel is used only on CPUs where AVX-512F was detected.
        unsafe { dot_avx512(a, b) }
    }
}

/// The AVX2+FMA kernel: only for code that runs where [`Isa::Avx2`] was detected.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2 {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: this kernel is used only on CPUs where AVX2 and FMA were detected.
        unsafe { dot_avx2(a, b) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (a, b) = (a.as_ptr(), b.as_ptr());
    let mut sum = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, the length of both slices.
        let (x, y) = unsafe { (_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i))) };
        sum = _mm512_fmadd_ps(x, y, sum);
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = ((1u32 << (n - i)) - 1) as u16;
        // SAFETY: the mask loads only the n - i values left in both slices.
        let (x, y) = unsafe { (_mm512_maskz_loadu_ps(mask, a.add(i)), _mm512_maskz_loadu_ps(mask, b.add(i))) };
        sum = _mm512_fmadd_ps(x, y, sum);
    }
    _mm512_reduce_add_ps(sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut low, mut high) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, the length of both slices.
        unsafe {
            low = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), low);
            high = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), high);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe { low = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), low) };
        i += 8;
    }
    let sum = _mm256_add_ps(low, high);
    let quad = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    let single = _mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair));
    let mut total = _mm_cvtss_f32(single);
    while i < n {
        total += a[i] * b[i];
        i += 1;
    }
    total
}

/// Writes into `scores[i]` the dot product of `query` with row `i` of
/// `rows` (rows of `query.len()` values, one after another).
pub(crate) fn dot_rows(query: &[f32], rows: &[f32], scores: &mut [f32]) {
    debug_assert_eq!(rows.len(), query.len() * scores.len());
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F.
        Isa::Avx512 => unsafe { dot_rows_avx512(query, rows, scores) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA.
        Isa::Avx2 => unsafe { dot_rows_avx2(query, rows, scores) },
        _ => dot_rows_with::<Portable>(query, rows, scores),
    }
}

#[inline(always)]
fn dot_rows_with<K: Kernel>(query: &[f32], rows: &[f32], scores: &mut [f32]) {
    if query.is_empty() {
        return;
    }
    for (row, score) in rows.chunks_exact(query.len()).zip(scores.iter_mut()) {
        *score = K::dot(query, row);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dot_rows_avx512(query: &[f32], rows: &[f32], scores: &mut [f32]) {
    dot_rows_with::<Avx512>(query, rows, scores);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_rows_avx2(query: &[f32], rows: &[f32], scores: &mut [f32]) {
    dot_rows_with::<Avx2>(query, rows, scores);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_to_unit_length() {
        let unit = normalized(&[3.0, 4.0], 2).unwrap();
        assert_eq!(unit, vec![0.6, 0.8]);
        let huge = normalized(&[f32::MAX, f32::MAX], 2).unwrap();
        assert!((dot(&huge, &huge) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_what_has_no_direction() {
        assert!(matches!(normalized(&[1.0], 2), Err(VectorError::DimensionMismatch { expected: 2, actual: 1 })));
        assert!(matches!(normalized(&[1.0, f32::NAN], 2), Err(VectorError::NonFinite { position: 1, .. })));
        assert!(matches!(normalized(&[f32::INFINITY, 0.0], 2), Err(VectorError::NonFinite { position: 0, .. })));
        assert!(matches!(normalized(&[0.0, 0.0], 2), Err(VectorError::ZeroVector)));
    }

    #[test]
    fn every_kernel_this_cpu_runs_agrees_with_the_plain_loop() {
        for dimension in [1, 2, 7, 8, 15, 16, 17, 24, 50, 64, 384, 385] {
            let a: Vec<f32> = (0..dimension).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..dimension).map(|i| (i as f32 * 0.11).cos()).collect();
            let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let mut kernels = vec![("portable", Portable::dot(&a, &b))];
            #[cfg(target_arch = "x86_64")]
            {
                if Isa::detect() == Isa::Avx512 {
                    kernels.push(("avx512", Avx512::dot(&a, &b)));
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    kernels.push(("avx2", Avx2::dot(&a, &b)));
                }
            }
            for (name, got) in kernels {
                assert!((got - expected).abs() < 1e-4, "{name}, {dimension} dimensions: {got} vs {expected}");
            }
        }
    }

    #[test]
    fn dot_rows_matches_a_plain_loop() {
        for dimension in [1, 7, 16, 50, 384] {
            let query: Vec<f32> = (0..dimension).map(|i| (i as f32 * 0.37).sin()).collect();
            let rows: Vec<f32> = (0..dimension * 5).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut scores = vec![0.0; 5];
            dot_rows(&query, &rows, &mut scores);
            for (row, score) in rows.chunks(dimension).zip(&scores) {
                let expected: f32 = row.iter().zip(&query).map(|(a, b)| a * b).sum();
                assert!((score - expected).abs() < 1e-4, "{dimension}: {score} vs {expected}");
            }
        }
    }
}
