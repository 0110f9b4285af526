// implicit_gemm.cuh: the shared-memory tiled GEMM main loop behind the
// convolution kernels (conv2d.cu). One launch computes, for every z,
//   C[m][col] = sum_{r in [kbegin, kend)} A[m][r] * B[r][col]
// where A and B are never stored: a Problem class gathers their elements
// straight from the tensors (the im2col / col2im of a convolution folded into
// the loads) and scatters C into the output.
//
// Tiling: a block computes a BM x BN tile of C, stepping through the
// reduction BK at a time. Each step's A (BM x BK) and B (BK x BN) tiles are
// gathered into registers while the previous step's tiles, held in shared
// memory, are multiplied (double buffering, one __syncthreads per step).
// Every thread owns a TM x TN micro-tile of C in registers, read from shared
// memory 4 values at a time (split into TM/4 x TN/4 blocks of 4 so that a
// warp's reads of B are contiguous).
//
// Determinism: each C element is one thread's sequential sum over r in
// increasing order, whatever the tile shape, so the result depends only on
// the reduction range [kbegin, kend), never on the launch configuration.
// An optional TF32 variant (implicit_gemm_tf32_kernel) uses the same tiles
// and loaders and multiplies on the tensor cores.
//
// A thread's work between two barriers is a __host__ __device__ method of
// GemmThread, so a host program can run a whole block step by step.
//
// Problem interface (all STRIATE_HD const members; T = value_type):
//   kBAlongReduction   B's loader puts consecutive threads on consecutive r
//                      (true) or on consecutive columns (false): the
//                      direction in which B's source tensor is contiguous.
//   num_z()            how many independent GEMMs (groups, phases, splits).
//   block(z, Block&)   fills Block (derived from GemmExtent) for GEMM z.
//   a_m(blk, m) -> AM, a_r(blk, r) -> AR, load_a(blk, AM, AR) -> T
//   b_c(blk, col) -> BC, b_r(blk, r) -> BR, load_b(blk, BR, BC) -> T
//   out_col(blk, col) -> OC, store(blk, m, OC, T)
// The kernel only calls load_a / load_b / store for m < M, col < ncol and
// r in [kbegin, kend); the loads return 0 for taps that fall in the padding.
// a_m / a_r / b_c / b_r / out_col may be called with out-of-range indices
// (then their result is not used) and must not dereference memory.
// Indices m, col and r are 32-bit: the launchers check that the extents
// stay below kGemmIndexLimit. Memory offsets are 64-bit.
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.cuh"
#include "common/macros.h"

namespace striate {

// Largest GEMM extent (M, columns, reduction) and spatial coordinate the
// kernels accept; the margin keeps r + BK and similar sums inside int.
constexpr index_t kGemmIndexLimit = (index_t(1) << 31) - (index_t(1) << 16);

// Unsigned division by a run-time invariant d (1 <= d <= 2^31) of numerators
// n < 2^31, with a multiply-high and a shift: q = floor(n * mul / 2^(32+shift))
// with mul = ceil(2^(31+l) / d), l = ceil(log2 d) (Granlund & Montgomery
// 1994, N = 31). Exact because n * (mul * d - 2^(31+l)) < 2^31 * d <= 2^(31+l).
struct FastDivmod {
  uint32_t d = 1, mul = 0, shift = 0;
  FastDivmod() = default;
  STRIATE_HD explicit FastDivmod(uint32_t divisor) : d(divisor) {
    if (d > 1) {
      uint32_t l = 0;
      while ((uint64_t(1) << l) < d) ++l;
      mul = (uint32_t)(((uint64_t(1) << (31 + l)) + d - 1) / d);
      shift = l - 1;
    }
  }
  STRIATE_HD uint32_t div(uint32_t n) const {
    if (d == 1) return n;
#if defined(__CUDA_ARCH__)
    return __umulhi(n, mul) >> shift;
#else
    return (uint32_t)(((uint64_t)n * mul) >> 32) >> shift;
#endif
  }
  STRIATE_HD void divmod(uint32_t n, uint32_t& q, uint32_t& r) const {
    q = div(n);
    r = n - q * d;
  }
};

// Extent of one GEMM: rows [0, M), columns [0, ncol), reduction [kbegin, kend).
struct GemmExtent {
  int M, ncol, kbegin, kend;
};

// MIN_BLOCKS is the occupancy asked of the register allocator
// (__launch_bounds__): 2 caps a 256-thread block at 128 registers.
template <int BM_, int BN_, int BK_, int TM_, int TN_, int MIN_BLOCKS_>
struct TileShape {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_;
  static constexpr int THREADS = (BM / TM) * (BN / TN);
  static constexpr int A_LOADS = BM * BK / THREADS;  // A elements each thread gathers per step
  static constexpr int B_LOADS = BN * BK / THREADS;
  static constexpr int STEP = THREADS / BK;          // row / column stride between them
  static constexpr int PAD = 4;                      // keeps 16-byte rows, breaks store conflicts
  static_assert(TM % 4 == 0 && TN % 4 == 0, "micro-tiles are read from shared memory by 4");
  static_assert(THREADS % BK == 0 && A_LOADS * STEP == BM && B_LOADS * STEP == BN,
                "the loaders must cover the tiles exactly");
};

// The tiles the convolution launchers choose from (256 threads each):
// large for big problems in fp32, medium otherwise, narrow for M <= 32.
// The large tile's 64 accumulators and gather state need about 170
// registers (one block per SM); a 128 cap would spill in the main loop.
using TileLarge = TileShape<128, 128, 8, 8, 8, 1>;
using TileMedium = TileShape<64, 64, 16, 4, 4, 2>;
using TileNarrow = TileShape<32, 128, 8, 4, 4, 2>;

namespace gemm_detail {

template <typename T>
STRIATE_HD inline T mul_add(T a, T b, T c) {
#if defined(__CUDA_ARCH__)
  return fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// v[0..3] = p[0..3]; p is 16-byte aligned (one vector load on the device).
template <typename T>
STRIATE_HD inline void load4(const T* p, T* v) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same<T, float>::value) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
    const double2 q0 = *reinterpret_cast<const double2*>(p);
    const double2 q1 = *reinterpret_cast<const double2*>(p + 2);
    v[0] = q0.x, v[1] = q0.y, v[2] = q1.x, v[3] = q1.y;
  }
#else
  for (int i = 0; i < 4; ++i) v[i] = p[i];
#endif
}

// Row (column) of micro-tile entry i of the thread at micro-tile position t:
// TSIZE/4 runs of 4 consecutive entries, TILE/(TSIZE/4) apart.
template <int TILE, int TSIZE>
STRIATE_HD constexpr int micro_index(int i, int t) {
  return (i / 4) * (TILE / (TSIZE / 4)) + t * 4 + (i % 4);
}

}  // namespace gemm_detail

// One thread's share of one block tile: its gather state, the registers it
// stages loads in and its micro-tile of accumulators. The kernel below calls
// the steps with __syncthreads() between them; the steps themselves are
// plain __host__ __device__ code, so a host program can run a block by
// calling them for every thread in turn.
template <class Tile, class Problem>
struct GemmThread {
  using T = typename Problem::value_type;
  static constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, TM = Tile::TM, TN = Tile::TN;
  static constexpr int A_LOADS = Tile::A_LOADS, B_LOADS = Tile::B_LOADS, STEP = Tile::STEP;

  struct Shared {
    alignas(32) T A[2][BK][BM + Tile::PAD];  // A[buf][k][m]; 32-byte rows of 8 for WMMA
    alignas(32) T B[2][BK][BN + Tile::PAD];  // B[buf][k][col]
  };

  typename Problem::Block blk;
  int m0, c0;
  int a_lane, a_row;  // A loader: consecutive threads on consecutive r, rows a_row + i*STEP
  int b_lane, b_col;  // B loader: reduction lane, columns b_col + i*STEP
  int ty, tx;         // micro-tile position
  typename Problem::AM am[A_LOADS];
  bool am_ok[A_LOADS];
  typename Problem::BC bc[B_LOADS];
  bool bc_ok[B_LOADS];
  T ra[A_LOADS], rb[B_LOADS];
  T acc[TM][TN];

  // Sets up GEMM z's tile (bx, by) for thread t; false (for every thread of
  // the block alike) when the tile lies outside this GEMM.
  STRIATE_HD bool begin(const Problem& pb, int z, int bx, int by, int t) {
    pb.block(z, blk);
    m0 = by * BM;
    c0 = bx * BN;
    if (m0 >= blk.M || c0 >= blk.ncol) return false;
    a_lane = t % BK;
    a_row = t / BK;
    b_lane = Problem::kBAlongReduction ? t % BK : t / STEP;
    b_col = Problem::kBAlongReduction ? t / BK : t % STEP;
    ty = t / (BN / TN);
    tx = t % (BN / TN);
#pragma unroll
    for (int i = 0; i < A_LOADS; ++i) {
      const int m = m0 + a_row + i * STEP;
      am_ok[i] = m < blk.M;
      am[i] = pb.a_m(blk, m);
    }
#pragma unroll
    for (int i = 0; i < B_LOADS; ++i) {
      const int col = c0 + b_col + i * STEP;
      bc_ok[i] = col < blk.ncol;
      bc[i] = pb.b_c(blk, col);
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
    return true;
  }

  // Gathers this thread's A and B elements of reduction step k0 into registers.
  STRIATE_HD void fetch(const Problem& pb, int k0) {
    const int r_a = k0 + a_lane;
    const bool r_a_ok = r_a < blk.kend;
    const typename Problem::AR ar = pb.a_r(blk, r_a);
#pragma unroll
    for (int i = 0; i < A_LOADS; ++i)
      ra[i] = (am_ok[i] && r_a_ok) ? pb.load_a(blk, am[i], ar) : T(0);
    const int r_b = k0 + b_lane;
    const bool r_b_ok = r_b < blk.kend;
    const typename Problem::BR br = pb.b_r(blk, r_b);
#pragma unroll
    for (int i = 0; i < B_LOADS; ++i)
      rb[i] = (bc_ok[i] && r_b_ok) ? pb.load_b(blk, br, bc[i]) : T(0);
  }

  STRIATE_HD void stash(Shared& s, int buf) const {
#pragma unroll
    for (int i = 0; i < A_LOADS; ++i) s.A[buf][a_lane][a_row + i * STEP] = ra[i];
#pragma unroll
    for (int i = 0; i < B_LOADS; ++i) s.B[buf][b_lane][b_col + i * STEP] = rb[i];
  }

  // acc += the shared tiles' product over this step's BK reduction indices.
  STRIATE_HD void multiply(const Shared& s, int buf) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T fa[TM], fb[TN];
#pragma unroll
      for (int i = 0; i < TM / 4; ++i)
        gemm_detail::load4(&s.A[buf][kk][gemm_detail::micro_index<BM, TM>(4 * i, ty)], &fa[4 * i]);
#pragma unroll
      for (int j = 0; j < TN / 4; ++j)
        gemm_detail::load4(&s.B[buf][kk][gemm_detail::micro_index<BN, TN>(4 * j, tx)], &fb[4 * j]);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = gemm_detail::mul_add(fa[i], fb[j], acc[i][j]);
    }
  }

  STRIATE_HD void finish(const Problem& pb) const {
    typename Problem::OC oc[TN];
    bool oc_ok[TN];
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int col = c0 + gemm_detail::micro_index<BN, TN>(j, tx);
      oc_ok[j] = col < blk.ncol;
      oc[j] = pb.out_col(blk, col);
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int m = m0 + gemm_detail::micro_index<BM, TM>(i, ty);
      if (m >= blk.M) continue;
#pragma unroll
      for (int j = 0; j < TN; ++j)
        if (oc_ok[j]) pb.store(blk, m, oc[j], acc[i][j]);
    }
  }
};

// fp64 keeps one block per SM: its doubled accumulators and staging
// registers would spill under the 128-register cap.
template <class Tile, class Problem>
__global__ void __launch_bounds__(Tile::THREADS,
                                  sizeof(typename Problem::value_type) == 4 ? Tile::MIN_BLOCKS : 1)
    implicit_gemm_kernel(const Problem pb) {
  using Thread = GemmThread<Tile, Problem>;
  __shared__ typename Thread::Shared smem;
  for (int z = blockIdx.z; z < pb.num_z(); z += gridDim.z) {
    Thread th;
    if (!th.begin(pb, z, blockIdx.x, blockIdx.y, threadIdx.x)) continue;  // uniform
    const int kbegin = th.blk.kbegin, kend = th.blk.kend;
    if (kbegin < kend) {
      th.fetch(pb, kbegin);
      th.stash(smem, 0);
      __syncthreads();
      int buf = 0;
      for (int k0 = kbegin; k0 < kend; k0 += Tile::BK) {
        const bool more = k0 + Tile::BK < kend;
        if (more) th.fetch(pb, k0 + Tile::BK);  // global loads in flight during the multiply
        th.multiply(smem, buf);
        if (more) {
          th.stash(smem, buf ^ 1);  // the other buffer: last read before the previous barrier
          __syncthreads();
          buf ^= 1;
        }
      }
    }
    th.finish(pb);
    __syncthreads();  // the next z reuses the shared tiles
  }
}

// The TF32 tensor-core variant (fp32 data, sm_80 and newer): the same tiles,
// loaders and reduction ranges, but each k-step is multiplied by WMMA
// 16x16x8 TF32 operations (inputs rounded to TF32, products summed in fp32
// in the tensor cores' fixed order: deterministic, not bit-equal to the
// FFMA kernel). The 8 warps form a 2 x 4 grid over the block tile.
template <class Tile, class Problem>
__global__ void __launch_bounds__(Tile::THREADS, 1) implicit_gemm_tf32_kernel(const Problem pb) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  using Thread = GemmThread<Tile, Problem>;
  static_assert(std::is_same<typename Problem::value_type, float>::value, "TF32 takes fp32 data");
  static_assert(Tile::THREADS == 256 && Tile::BK % 8 == 0, "8 warps, k-steps of 8");
  constexpr int WARP_M = Tile::BM / 2, WARP_N = Tile::BN / 4;  // one warp's sub-tile
  constexpr int FM = WARP_M / 16, FN = WARP_N / 16;
  static_assert(WARP_M % 16 == 0 && WARP_N % 16 == 0, "whole 16x16 fragments per warp");
  static_assert(sizeof(typename Thread::Shared) >= 8 * 256 * sizeof(float), "epilogue scratch");
  constexpr int LDA = Tile::BM + Tile::PAD, LDB = Tile::BN + Tile::PAD;
  __shared__ typename Thread::Shared smem;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 4, wn = warp % 4;

  for (int z = blockIdx.z; z < pb.num_z(); z += gridDim.z) {
    Thread th;
    if (!th.begin(pb, z, blockIdx.x, blockIdx.y, threadIdx.x)) continue;  // uniform
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    const int kbegin = th.blk.kbegin, kend = th.blk.kend;
    if (kbegin < kend) {
      th.fetch(pb, kbegin);
      th.stash(smem, 0);
      __syncthreads();
      int buf = 0;
      for (int k0 = kbegin; k0 < kend; k0 += Tile::BK) {
        const bool more = k0 + Tile::BK < kend;
        if (more) th.fetch(pb, k0 + Tile::BK);
#pragma unroll
        for (int kk = 0; kk < Tile::BK; kk += 8) {
          // A is stored k-major (A[k][m]): a column-major 16x8 operand.
          wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> a[FM];
          wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b[FN];
#pragma unroll
          for (int i = 0; i < FM; ++i) {
            wmma::load_matrix_sync(a[i], &smem.A[buf][kk][wm * WARP_M + i * 16], LDA);
#pragma unroll
            for (int e = 0; e < a[i].num_elements; ++e)
              a[i].x[e] = wmma::__float_to_tf32(a[i].x[e]);
          }
#pragma unroll
          for (int j = 0; j < FN; ++j) {
            wmma::load_matrix_sync(b[j], &smem.B[buf][kk][wn * WARP_N + j * 16], LDB);
#pragma unroll
            for (int e = 0; e < b[j].num_elements; ++e)
              b[j].x[e] = wmma::__float_to_tf32(b[j].x[e]);
          }
#pragma unroll
          for (int i = 0; i < FM; ++i)
#pragma unroll
            for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        if (more) {
          th.stash(smem, buf ^ 1);
          __syncthreads();
          buf ^= 1;
        }
      }
    }
    // Epilogue through a 16x16 scratch per warp (the tiles' memory, now free).
    __syncthreads();
    float* scratch = reinterpret_cast<float*>(&smem) + warp * 256;
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j) {
        wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int q = 0; q < 8; ++q) {
          const int e = lane + 32 * q;
          const int m = th.m0 + wm * WARP_M + i * 16 + e / 16;
          const int col = th.c0 + wn * WARP_N + j * 16 + e % 16;
          if (m < th.blk.M && col < th.blk.ncol)
            pb.store(th.blk, m, pb.out_col(th.blk, col), scratch[e]);
        }
        __syncwarp();
      }
    __syncthreads();  // the next z reuses the shared tiles
  }
#endif
}

// True when the current device runs the TF32 kernel (compute capability 8.0+).
inline bool device_has_tf32() {
  int device = 0, major = 0;
  STRIATE_CUDA_CHECK(cudaGetDevice(&device));
  STRIATE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 8;
}

// Launches the kernel over max_M x max_ncol tiles (the largest extents over
// all z; blocks beyond a smaller GEMM's extent return at once). With tf32
// (fp32 only; ignored before compute capability 8.0) the TF32 kernel runs.
template <class Tile, class Problem>
void launch_implicit_gemm(const Problem& pb, index_t max_M, index_t max_ncol, index_t num_z,
                          bool tf32, cudaStream_t stream) {
  if (max_M <= 0 || max_ncol <= 0 || num_z <= 0) return;
  const index_t gx = (max_ncol + Tile::BN - 1) / Tile::BN;
  const index_t gy = (max_M + Tile::BM - 1) / Tile::BM;
  if (gy > 65535)
    throw std::invalid_argument("conv2d (CUDA): too many channels per group (" +
                                std::to_string(max_M) + ") for one launch");
  const index_t gz = num_z < 65535 ? num_z : 65535;
  const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
  if constexpr (std::is_same<typename Problem::value_type, float>::value) {
    if (tf32 && device_has_tf32()) {
      implicit_gemm_tf32_kernel<Tile, Problem><<<grid, Tile::THREADS, 0, stream>>>(pb);
      STRIATE_CUDA_CHECK(cudaGetLastError());
      return;
    }
  }
  implicit_gemm_kernel<Tile, Problem><<<grid, Tile::THREADS, 0, stream>>>(pb);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace striate
