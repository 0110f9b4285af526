// conv2d.cu: 2-D cross-correlation on the GPU, forward and backward, as
// implicit GEMMs (implicit_gemm.cuh) whose operands are gathered straight
// from the tensors; no im2col buffer, no cuDNN/cuBLAS, no atomics.
//   forward        per group:  y (Kg x N*P)    = w (Kg x R) * im2col(x) (R x N*P)
//   backward data  per group and stride phase (qh, qw):
//                  dx (Cg x N*Hq*Wq) = w^T (Cg x Kg*taps) * dy-gather (Kg*taps x N*Hq*Wq)
//   backward wt.   per group and reduction split s:
//                  dw_s (Kg x R)     = dy (Kg x chunk_s) * im2col(x)^T (chunk_s x R)
// with P = Ho*Wo and R = Cg*kh*kw. The backward-data pass is the col2im
// folded into a gather: input cells are grouped by their phase
// ((h + pt) mod sh, (w + pl) mod sw); the cells of one phase are reached by
// the same taps a (those with a*dh = qh mod sh), so every phase is a dense
// GEMM over exactly the taps that touch it (no wasted multiplies by the
// stride's zeros, no scatter). The backward-weight reduction over N*P is
// split into chunks when the weight tile count alone cannot fill the GPU;
// each chunk writes its partial dw into the caller's workspace and a second
// kernel adds the chunks in order. The split count is a function of the
// shape only, so results are reproducible run to run and across GPUs.
// The bias gradient is one block per channel with a fixed tree reduction.
// With allow_tf32 (fp32 on compute capability 8.0+) the GEMMs run on the
// TF32 tensor cores instead of FFMA; off by default (striate.cuda.allow_tf32).
#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.cuh"
#include "conv2d.h"
#include "implicit_gemm.cuh"

namespace striate {

namespace {

// The Problem classes below (see implicit_gemm.cuh) are __host__ __device__
// so that their gather / scatter index math can also be run on the host.

// Conv2dGeometry narrowed to int after checking the limits, plus the
// derived sizes the kernels use.
struct ConvDims {
  int N, C, H, W, K, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw, groups, Cg, Kg, R;
  index_t HW, P;  // input and output plane sizes
};

// Product of positive factors, or kGemmIndexLimit when it would reach it.
index_t bounded_product(std::initializer_list<index_t> factors) {
  index_t p = 1;
  for (index_t f : factors) {
    if (f < 0 || f >= kGemmIndexLimit || p * f >= kGemmIndexLimit) return kGemmIndexLimit;
    p *= f;
  }
  return p;
}

ConvDims conv_dims(const Conv2dGeometry& g) {
  const bool positive = g.N >= 1 && g.C >= 1 && g.H >= 1 && g.W >= 1 && g.K >= 1 && g.Ho >= 1 &&
                        g.Wo >= 1 && g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 &&
                        g.dh >= 1 && g.dw >= 1 && g.groups >= 1 && g.pt >= 0 && g.pl >= 0;
  if (!positive || g.C % g.groups || g.K % g.groups)
    throw std::invalid_argument("conv2d (CUDA): invalid geometry");
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t fields[] = {g.N, g.C, g.H, g.W, g.K, g.Ho, g.Wo, g.kh, g.kw,
                            g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.groups};
  bool fits = true;
  for (index_t v : fields) fits = fits && v < kGemmIndexLimit;
  // With every field below 2^31 none of these int64 expressions overflows.
  if (fits)
    for (index_t v : {bounded_product({g.N, g.Ho, g.Wo}), bounded_product({g.N, g.H, g.W}),
                      bounded_product({Cg, g.kh, g.kw}), bounded_product({Kg, g.kh, g.kw}),
                      bounded_product({g.groups, g.sh, g.sw}),
                      g.Ho * g.sh + g.kh * g.dh, g.Wo * g.sw + g.kw * g.dw,  // input coordinates
                      g.H + g.pt + g.sh, g.W + g.pl + g.sw})
      fits = fits && v < kGemmIndexLimit;
  if (!fits)
    throw std::invalid_argument(
        "conv2d (CUDA): problem too large for 32-bit GEMM indices (N*Ho*Wo, N*H*W, "
        "C/groups*kh*kw and the padded extents must stay below 2^31)");
  ConvDims d;
  d.N = (int)g.N; d.C = (int)g.C; d.H = (int)g.H; d.W = (int)g.W;
  d.K = (int)g.K; d.Ho = (int)g.Ho; d.Wo = (int)g.Wo;
  d.kh = (int)g.kh; d.kw = (int)g.kw; d.sh = (int)g.sh; d.sw = (int)g.sw;
  d.pt = (int)g.pt; d.pl = (int)g.pl; d.dh = (int)g.dh; d.dw = (int)g.dw;
  d.groups = (int)g.groups; d.Cg = (int)Cg; d.Kg = (int)Kg;
  d.R = (int)(Cg * g.kh * g.kw);
  d.HW = g.H * g.W;
  d.P = g.Ho * g.Wo;
  return d;
}

// ------------------------------------------------------------ forward
// y[n, gi*Kg + m, p] =
//   sum_r w[gi*Kg + m, r] * x[n, gi*Cg + c, oh*sh - pt + a*dh, ow*sw - pl + b*dw]
// with r = (c*kh + a)*kw + b and col = n*P + oh*Wo + ow.
template <typename T>
struct ConvForwardProblem {
  using value_type = T;
  static constexpr bool kBAlongReduction = false;  // x is contiguous along ow
  T* y;
  const T* x;
  const T* w;
  const T* bias;
  ConvDims d;
  FastDivmod div_P, div_Wo, div_kk, div_kw;

  struct Block : GemmExtent { int gi; };
  struct AM { index_t off; };
  struct AR { int r; };
  struct BC { index_t off; int ih0, iw0; };
  struct BR { index_t off; int ah, bw; };
  struct OC { index_t off; };

  STRIATE_HD int num_z() const { return d.groups; }
  STRIATE_HD void block(int z, Block& b) const {
    b.gi = z;
    b.M = d.Kg;
    b.ncol = d.N * (int)d.P;
    b.kbegin = 0;
    b.kend = d.R;
  }
  STRIATE_HD AM a_m(const Block& b, int m) const { return {((index_t)b.gi * d.Kg + m) * d.R}; }
  STRIATE_HD AR a_r(const Block&, int r) const { return {r}; }
  STRIATE_HD T load_a(const Block&, const AM& m, const AR& r) const { return w[m.off + r.r]; }
  STRIATE_HD BC b_c(const Block& b, int col) const {
    uint32_t n, p, oh, ow;
    div_P.divmod((uint32_t)col, n, p);
    div_Wo.divmod(p, oh, ow);
    BC c;
    c.ih0 = (int)oh * d.sh - d.pt;
    c.iw0 = (int)ow * d.sw - d.pl;
    c.off = ((index_t)n * d.C + (index_t)b.gi * d.Cg) * d.HW + (index_t)c.ih0 * d.W + c.iw0;
    return c;
  }
  STRIATE_HD BR b_r(const Block&, int r) const {
    uint32_t c, rem, a, bb;
    div_kk.divmod((uint32_t)r, c, rem);
    div_kw.divmod(rem, a, bb);
    BR q;
    q.ah = (int)a * d.dh;
    q.bw = (int)bb * d.dw;
    q.off = (index_t)c * d.HW + (index_t)q.ah * d.W + q.bw;
    return q;
  }
  STRIATE_HD T load_b(const Block&, const BR& r, const BC& c) const {
    const int ih = c.ih0 + r.ah, iw = c.iw0 + r.bw;
    return ((unsigned)ih < (unsigned)d.H && (unsigned)iw < (unsigned)d.W) ? x[c.off + r.off] : T(0);
  }
  STRIATE_HD OC out_col(const Block&, int col) const {
    uint32_t n, p;
    div_P.divmod((uint32_t)col, n, p);
    return {(index_t)n * d.K * d.P + p};
  }
  STRIATE_HD void store(const Block& b, int m, const OC& c, T v) const {
    const index_t k = (index_t)b.gi * d.Kg + m;
    y[c.off + k * d.P] = bias ? v + bias[k] : v;
  }
};

// ------------------------------------------------------- backward data
// One stride phase along one axis: the input cells i = start + stride*u
// (u < count) with (i + pad) = q (mod stride) are read by exactly the taps
// a = tap_first + tap_step*t (t < taps), tap t at output index
// u + base - t*base_step.
struct Phase {
  int start, count, tap_first, tap_step, taps, base, base_step;
};

STRIATE_HD inline int gcd_int(int a, int b) {
  while (b) {
    const int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

STRIATE_HD inline Phase make_phase(int q, int in, int s, int pad, int k, int dil) {
  Phase ph;
  ph.start = (q - pad % s + s) % s;
  ph.count = ph.start < in ? (in - ph.start + s - 1) / s : 0;
  const int g = gcd_int(s, dil);
  ph.tap_step = s / g;  // a*dil mod s repeats with this period
  ph.base_step = dil / g;
  ph.tap_first = -1;
  for (int a = 0; a < k && a < ph.tap_step; ++a)
    if ((int)(((index_t)a * dil) % s) == q) {
      ph.tap_first = a;
      break;
    }
  ph.taps = ph.tap_first < 0 ? 0 : (k - ph.tap_first + ph.tap_step - 1) / ph.tap_step;
  // Exact: start + pad and tap_first*dil are both = q (mod s).
  ph.base = ph.tap_first < 0 ? 0 : (ph.start + pad - ph.tap_first * dil) / s;
  return ph;
}

// dx[n, gi*Cg + m, ph.start + sh*u, pw.start + sw*v] =
//   sum over r = (k*taps_h + th)*taps_w + tw of
//   w[gi*Kg + k, m, a(th), b(tw)] * dy[n, gi*Kg + k, u + du(th), v + dv(tw)]   (+ bias)
// with col = (n*count_h + u)*count_w + v; z = gi*sh*sw + qh*sw + qw.
template <typename T>
struct ConvBackwardDataProblem {
  using value_type = T;
  static constexpr bool kBAlongReduction = false;  // dy is contiguous along v
  T* dx;
  const T* dy;
  const T* w;
  const T* bias;
  ConvDims d;

  struct Block : GemmExtent {
    int gi;
    Phase ph, pw;
    FastDivmod div_taps, div_tw;
  };
  struct AM { index_t off; };
  struct AR { index_t off; };
  struct BC { index_t off; int u, v; };
  struct BR { index_t off; int du, dv; };
  struct OC { index_t off; };

  STRIATE_HD int num_z() const { return d.groups * d.sh * d.sw; }
  STRIATE_HD void block(int z, Block& b) const {
    const int phases = d.sh * d.sw, q = z % phases;
    b.gi = z / phases;
    b.ph = make_phase(q / d.sw, d.H, d.sh, d.pt, d.kh, d.dh);
    b.pw = make_phase(q % d.sw, d.W, d.sw, d.pl, d.kw, d.dw);
    b.M = d.Cg;
    b.ncol = d.N * b.ph.count * b.pw.count;  // <= N*H*W
    b.kbegin = 0;
    b.kend = d.Kg * b.ph.taps * b.pw.taps;
    b.div_taps = FastDivmod((uint32_t)(b.kend > 0 ? b.ph.taps * b.pw.taps : 1));
    b.div_tw = FastDivmod((uint32_t)(b.kend > 0 ? b.pw.taps : 1));
  }
  // Reduction index r -> (k, th, tw).
  STRIATE_HD void taps_of(const Block& b, int r, uint32_t& k, uint32_t& th, uint32_t& tw) const {
    uint32_t rem;
    b.div_taps.divmod((uint32_t)r, k, rem);
    b.div_tw.divmod(rem, th, tw);
  }
  // Column -> (n, u, v); only called when the phase has cells (ncol > 0).
  STRIATE_HD void cell_of(const Block& b, int col, int& n, int& u, int& v) const {
    const int per_image = b.ph.count * b.pw.count;
    n = col / per_image;
    const int rem = col - n * per_image;
    u = rem / b.pw.count;
    v = rem - u * b.pw.count;
  }
  STRIATE_HD AM a_m(const Block&, int m) const { return {(index_t)m * d.kh * d.kw}; }
  STRIATE_HD AR a_r(const Block& b, int r) const {
    uint32_t k, th, tw;
    taps_of(b, r, k, th, tw);
    const int a = b.ph.tap_first + (int)th * b.ph.tap_step;
    const int bb = b.pw.tap_first + (int)tw * b.pw.tap_step;
    return {((index_t)b.gi * d.Kg + k) * d.Cg * d.kh * d.kw + (index_t)a * d.kw + bb};
  }
  STRIATE_HD T load_a(const Block&, const AM& m, const AR& r) const { return w[r.off + m.off]; }
  STRIATE_HD BC b_c(const Block& b, int col) const {
    int n, u, v;
    cell_of(b, col, n, u, v);
    return {((index_t)n * d.K + (index_t)b.gi * d.Kg) * d.P + (index_t)u * d.Wo + v, u, v};
  }
  STRIATE_HD BR b_r(const Block& b, int r) const {
    uint32_t k, th, tw;
    taps_of(b, r, k, th, tw);
    const int du = b.ph.base - (int)th * b.ph.base_step;
    const int dv = b.pw.base - (int)tw * b.pw.base_step;
    return {(index_t)k * d.P + (index_t)du * d.Wo + dv, du, dv};
  }
  STRIATE_HD T load_b(const Block&, const BR& r, const BC& c) const {
    const int oh = c.u + r.du, ow = c.v + r.dv;
    return ((unsigned)oh < (unsigned)d.Ho && (unsigned)ow < (unsigned)d.Wo) ? dy[c.off + r.off]
                                                                           : T(0);
  }
  STRIATE_HD OC out_col(const Block& b, int col) const {
    int n, u, v;
    cell_of(b, col, n, u, v);
    return {((index_t)n * d.C + (index_t)b.gi * d.Cg) * d.HW +
            (index_t)(b.ph.start + u * d.sh) * d.W + (b.pw.start + v * d.sw)};
  }
  STRIATE_HD void store(const Block& b, int m, const OC& c, T v) const {
    dx[c.off + (index_t)m * d.HW] = bias ? v + bias[(index_t)b.gi * d.Cg + m] : v;
  }
};

// ----------------------------------------------------- backward weight
// out[s][gi*Kg + m][col] = sum over r = n*P + oh*Wo + ow in split s of
//   dy[n, gi*Kg + m, oh, ow] * x[n, gi*Cg + c, oh*sh - pt + a*dh, ow*sw - pl + b*dw]
// with col = (c*kh + a)*kw + b; z = gi*splits + s; out is dw when splits == 1.
template <typename T>
struct ConvBackwardWeightProblem {
  using value_type = T;
  static constexpr bool kBAlongReduction = true;  // x is contiguous along ow, part of r
  T* out;
  const T* dy;
  const T* x;
  ConvDims d;
  int splits, chunk;
  index_t wsize;  // K * R, one partial dw
  FastDivmod div_P, div_Wo, div_kk, div_kw;

  struct Block : GemmExtent { int gi, s; };
  struct AM { index_t off; };
  struct AR { index_t off; };
  struct BC { index_t off; int ah, bw; };
  struct BR { index_t off; int ih0, iw0; };
  struct OC { int col; };

  STRIATE_HD int num_z() const { return d.groups * splits; }
  STRIATE_HD void block(int z, Block& b) const {
    b.gi = z / splits;
    b.s = z % splits;
    b.M = d.Kg;
    b.ncol = d.R;
    b.kbegin = b.s * chunk;
    const int length = d.N * (int)d.P;
    b.kend = chunk < length - b.kbegin ? b.kbegin + chunk : length;
  }
  STRIATE_HD AM a_m(const Block& b, int m) const { return {((index_t)b.gi * d.Kg + m) * d.P}; }
  STRIATE_HD AR a_r(const Block&, int r) const {
    uint32_t n, p;
    div_P.divmod((uint32_t)r, n, p);
    return {(index_t)n * d.K * d.P + p};
  }
  STRIATE_HD T load_a(const Block&, const AM& m, const AR& r) const { return dy[m.off + r.off]; }
  STRIATE_HD BC b_c(const Block& b, int col) const {
    uint32_t c, rem, a, bb;
    div_kk.divmod((uint32_t)col, c, rem);
    div_kw.divmod(rem, a, bb);
    BC q;
    q.ah = (int)a * d.dh;
    q.bw = (int)bb * d.dw;
    q.off = ((index_t)b.gi * d.Cg + c) * d.HW + (index_t)q.ah * d.W + q.bw;
    return q;
  }
  STRIATE_HD BR b_r(const Block&, int r) const {
    uint32_t n, p, oh, ow;
    div_P.divmod((uint32_t)r, n, p);
    div_Wo.divmod(p, oh, ow);
    BR q;
    q.ih0 = (int)oh * d.sh - d.pt;
    q.iw0 = (int)ow * d.sw - d.pl;
    q.off = (index_t)n * d.C * d.HW + (index_t)q.ih0 * d.W + q.iw0;
    return q;
  }
  STRIATE_HD T load_b(const Block&, const BR& r, const BC& c) const {
    const int ih = r.ih0 + c.ah, iw = r.iw0 + c.bw;
    return ((unsigned)ih < (unsigned)d.H && (unsigned)iw < (unsigned)d.W) ? x[r.off + c.off] : T(0);
  }
  STRIATE_HD OC out_col(const Block&, int col) const { return {col}; }
  STRIATE_HD void store(const Block& b, int m, const OC& c, T v) const {
    out[(index_t)b.s * wsize + ((index_t)b.gi * d.Kg + m) * d.R + c.col] = v;
  }
};

// dw[i] = sum over s of partial[s][i], s in increasing order.
template <typename T>
__global__ void sum_splits_kernel(T* dw, const T* partial, index_t count, int splits) {
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < count;
       i += (index_t)gridDim.x * blockDim.x) {
    T s = partial[i];
    for (int k = 1; k < splits; ++k) s += partial[(index_t)k * count + i];
    dw[i] = s;
  }
}

// db[k] = sum over n, p of dy[n, k, p]: one block per channel, each thread a
// fixed strided share, then a fixed tree.
constexpr int kBiasThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kBiasThreads)
    bias_grad_kernel(T* db, const T* dy, index_t N, index_t K, index_t P) {
  __shared__ T part[kBiasThreads];
  const int t = threadIdx.x;
  for (index_t k = blockIdx.x; k < K; k += gridDim.x) {
    T s = T(0);
    for (index_t n = 0; n < N; ++n) {
      const T* row = dy + (n * K + k) * P;
      for (index_t p = t; p < P; p += kBiasThreads) s += row[p];
    }
    part[t] = s;
    __syncthreads();
    for (int width = kBiasThreads / 2; width > 0; width /= 2) {
      if (t < width) part[t] += part[t + width];
      __syncthreads();
    }
    if (t == 0) db[k] = part[0];
    __syncthreads();
  }
}

// ------------------------------------------------------------ launch plans
enum class TileKind { kLarge, kMedium, kNarrow };

template <class S>
index_t tile_count(index_t M, index_t cols) {
  return ((M + S::BM - 1) / S::BM) * ((cols + S::BN - 1) / S::BN);
}

// Large 128x128 tiles (fp32 only) when there are enough of them to fill the
// GPU, the narrow 32x128 tile for M <= 32, the medium 64x64 tile otherwise.
template <typename T>
TileKind choose_tile(index_t M, index_t total_cols, bool reduction_split) {
  if (M <= 32) return TileKind::kNarrow;
  if (std::is_same<T, float>::value && M > 64 &&
      (reduction_split || tile_count<TileLarge>(M, total_cols) >= 128))
    return TileKind::kLarge;
  return TileKind::kMedium;
}

template <typename T, class Problem>
void run_gemm(TileKind tile, const Problem& pb, index_t max_M, index_t max_ncol, index_t num_z,
              bool tf32, cudaStream_t stream) {
  if constexpr (std::is_same<T, float>::value) {
    if (tile == TileKind::kLarge)
      return launch_implicit_gemm<TileLarge>(pb, max_M, max_ncol, num_z, tf32, stream);
  }
  if (tile == TileKind::kNarrow)
    return launch_implicit_gemm<TileNarrow>(pb, max_M, max_ncol, num_z, tf32, stream);
  launch_implicit_gemm<TileMedium>(pb, max_M, max_ncol, num_z, tf32, stream);
}

// Backward-weight plan: the reduction over N*P is cut into `splits` chunks
// when the weight tiles alone would give fewer than kTargetBlocks blocks.
constexpr index_t kTargetBlocks = 256;  // about two waves of blocks on an H100/H200
constexpr index_t kMinChunk = 256;      // reduction elements per block at least

struct WeightPlan {
  TileKind tile;
  int splits, chunk;
};

template <typename T>
WeightPlan weight_plan(const ConvDims& d) {
  WeightPlan plan;
  plan.tile = choose_tile<T>(d.Kg, d.R, true);
  const index_t per_group = plan.tile == TileKind::kLarge  ? tile_count<TileLarge>(d.Kg, d.R)
                          : plan.tile == TileKind::kNarrow ? tile_count<TileNarrow>(d.Kg, d.R)
                                                           : tile_count<TileMedium>(d.Kg, d.R);
  const index_t tiles = per_group * d.groups;
  const index_t length = (index_t)d.N * d.P;
  index_t splits = std::min((kTargetBlocks + tiles - 1) / tiles,
                            (length + kMinChunk - 1) / kMinChunk);
  splits = std::max<index_t>(splits, 1);
  index_t chunk = (length + splits - 1) / splits;
  chunk = (chunk + 15) / 16 * 16;  // whole reduction steps for every tile shape
  plan.chunk = (int)chunk;
  plan.splits = (int)((length + chunk - 1) / chunk);
  return plan;
}

int grid_for(index_t work, int threads) {
  const index_t blocks = (work + threads - 1) / threads;
  return (int)std::min<index_t>(std::max<index_t>(blocks, 1), 65535 * 16);
}

}  // namespace

template <typename T>
void conv2d_forward_cuda(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g,
                         bool allow_tf32, cudaStream_t stream) {
  const ConvDims d = conv_dims(g);
  ConvForwardProblem<T> pb;
  pb.y = y;
  pb.x = x;
  pb.w = w;
  pb.bias = b;
  pb.d = d;
  pb.div_P = FastDivmod((uint32_t)d.P);
  pb.div_Wo = FastDivmod((uint32_t)d.Wo);
  pb.div_kk = FastDivmod((uint32_t)(d.kh * d.kw));
  pb.div_kw = FastDivmod((uint32_t)d.kw);
  const index_t cols = (index_t)d.N * d.P;
  run_gemm<T>(choose_tile<T>(d.Kg, cols * d.groups, false), pb, d.Kg, cols, d.groups, allow_tf32,
              stream);
}

template <typename T>
void conv2d_backward_data_cuda(T* dx, const T* dy, const T* w, const T* b,
                               const Conv2dGeometry& g, bool allow_tf32, cudaStream_t stream) {
  const ConvDims d = conv_dims(g);
  ConvBackwardDataProblem<T> pb;
  pb.dx = dx;
  pb.dy = dy;
  pb.w = w;
  pb.bias = b;
  pb.d = d;
  // The largest phase has ceil(H/sh) x ceil(W/sw) cells per image.
  const index_t max_cols = (index_t)d.N * ((d.H + d.sh - 1) / d.sh) * ((d.W + d.sw - 1) / d.sw);
  const index_t phases = (index_t)d.sh * d.sw;
  run_gemm<T>(choose_tile<T>(d.Cg, (index_t)d.N * d.HW * d.groups, false), pb, d.Cg, max_cols,
              phases * d.groups, allow_tf32, stream);
}

template <typename T>
index_t conv2d_backward_weight_workspace_cuda(const Conv2dGeometry& g) {
  const ConvDims d = conv_dims(g);
  const WeightPlan plan = weight_plan<T>(d);
  return plan.splits > 1 ? (index_t)plan.splits * d.K * d.R : 0;
}

template <typename T>
void conv2d_backward_weight_cuda(T* dw, const T* dy, const T* x, const Conv2dGeometry& g,
                                 T* workspace, index_t workspace_count, bool allow_tf32,
                                 cudaStream_t stream) {
  const ConvDims d = conv_dims(g);
  const WeightPlan plan = weight_plan<T>(d);
  const index_t wsize = (index_t)d.K * d.R;
  if (plan.splits > 1 && (workspace == nullptr || workspace_count < plan.splits * wsize))
    throw std::invalid_argument("conv2d_backward (CUDA): the weight-gradient workspace needs " +
                                std::to_string(plan.splits * wsize) + " elements, got " +
                                std::to_string(workspace_count));
  ConvBackwardWeightProblem<T> pb;
  pb.out = plan.splits > 1 ? workspace : dw;
  pb.dy = dy;
  pb.x = x;
  pb.d = d;
  pb.splits = plan.splits;
  pb.chunk = plan.chunk;
  pb.wsize = wsize;
  pb.div_P = FastDivmod((uint32_t)d.P);
  pb.div_Wo = FastDivmod((uint32_t)d.Wo);
  pb.div_kk = FastDivmod((uint32_t)(d.kh * d.kw));
  pb.div_kw = FastDivmod((uint32_t)d.kw);
  run_gemm<T>(plan.tile, pb, d.Kg, d.R, (index_t)d.groups * plan.splits, allow_tf32, stream);
  if (plan.splits > 1) {
    const int threads = 256;
    sum_splits_kernel<T><<<grid_for(wsize, threads), threads, 0, stream>>>(dw, workspace, wsize,
                                                                           plan.splits);
    STRIATE_CUDA_CHECK(cudaGetLastError());
  }
}

template <typename T>
void conv2d_backward_bias_cuda(T* db, const T* dy, index_t N, index_t K, index_t P,
                               cudaStream_t stream) {
  if (N <= 0 || K <= 0 || P <= 0) return;
  const int blocks = (int)std::min<index_t>(K, 65535 * 16);
  bias_grad_kernel<T><<<blocks, kBiasThreads, 0, stream>>>(db, dy, N, K, P);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void conv2d_backward_cuda(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                          const Conv2dGeometry& g, T* workspace, index_t workspace_count,
                          bool allow_tf32, cudaStream_t stream) {
  if (dx)
    conv2d_backward_data_cuda(dx, dy, w, static_cast<const T*>(nullptr), g, allow_tf32, stream);
  if (dw) conv2d_backward_weight_cuda(dw, dy, x, g, workspace, workspace_count, allow_tf32, stream);
  if (db) conv2d_backward_bias_cuda(db, dy, g.N, g.K, g.Ho * g.Wo, stream);
}

#define STRIATE_INSTANTIATE_CONV2D_CUDA(T)                                                      \
  template void conv2d_forward_cuda<T>(T*, const T*, const T*, const T*, const Conv2dGeometry&, \
                                       bool, cudaStream_t);                                     \
  template void conv2d_backward_data_cuda<T>(T*, const T*, const T*, const T*,                  \
                                             const Conv2dGeometry&, bool, cudaStream_t);        \
  template index_t conv2d_backward_weight_workspace_cuda<T>(const Conv2dGeometry&);             \
  template void conv2d_backward_weight_cuda<T>(T*, const T*, const T*, const Conv2dGeometry&,   \
                                               T*, index_t, bool, cudaStream_t);                \
  template void conv2d_backward_bias_cuda<T>(T*, const T*, index_t, index_t, index_t,           \
                                             cudaStream_t);                                     \
  template void conv2d_backward_cuda<T>(T*, T*, T*, const T*, const T*, const T*,               \
                                        const Conv2dGeometry&, T*, index_t, bool, cudaStream_t);
STRIATE_INSTANTIATE_CONV2D_CUDA(float)
STRIATE_INSTANTIATE_CONV2D_CUDA(double)

}  // namespace striate
