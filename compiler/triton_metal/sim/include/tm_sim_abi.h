// The C interface between a compiled kernel library and the fiber runtime library.
//
// Both sides include this header: the kernel (through metal_shim.h) and fiber_runtime.cpp.
// The runtime is built once and loaded RTLD_GLOBAL, so a kernel library calls tm_rt_* directly.
// Change anything here and both cache keys change (build.py hashes this file).
#ifndef TM_SIM_ABI_H
#define TM_SIM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TM_SIMD_WIDTH 32u
#define TM_MAX_THREADS_PER_THREADGROUP 1024u
#define TM_MAX_THREADGROUP_MEMORY 32768u
#define TM_MAX_THREADGROUP_SLOTS 31u

// tm_launch.flags
#define TM_LAUNCH_REVERSE 1u  // run the threads of a threadgroup in reverse order (finds races)
#define TM_LAUNCH_STRICT 2u   // instrumented kernel: check bounds, uninitialised reads, races, barriers
#define TM_LAUNCH_COUNT 4u    // instrumented kernel: count memory traffic into tm_launch.stats
#define TM_LAUNCH_FLUSH_DENORMALS 8u  // float arithmetic flushes subnormal operands and results to zero
                                      // (as Apple GPUs: triton_metal/numerics.py)

// tm_rt_access: what an instrumented kernel reports for each access
#define TM_ACCESS_LOAD 1u
#define TM_ACCESS_STORE 2u
#define TM_ACCESS_ATOMIC 4u
#define TM_ACCESS_SAME_VALUE 8u  // with TM_ACCESS_STORE: the bytes stored equal those already there
#define TM_ACCESS_ALIGN_SHIFT 8u  // bits 8..15: log2 of the alignment the accessed type requires (float4: 4)
#define TM_SPACE_DEVICE 0u
#define TM_SPACE_THREADGROUP 1u
#define TM_SPACE_CONSTANT 2u         // a read-only [[buffer(i)]]: checked and counted as device memory
#define TM_SEGMENT_SIZES 3      // transactions are counted for 32-, 64- and 128-byte segments

typedef struct tm_launch tm_launch;

// Runs one simulated thread: builds its builtins and calls the kernel (generated per kernel).
// tg_pos is threadgroup_position_in_grid, tid is thread_index_in_threadgroup, tg_params holds
// the addresses of the [[threadgroup(i)]] parameters by slot.
typedef void (*tm_entry_fn)(const tm_launch* launch, const uint32_t* tg_pos, uint32_t tid,
                            void* const* tg_params);

// Runs one phase of one simulated thread of a kernel split into phases (phase_split.py): the
// runtime runs phase p for every thread before phase p + 1; `locals` is the thread's struct of
// locals that live across phases.
typedef void (*tm_phase_fn)(const tm_launch* launch, const uint32_t* tg_pos, uint32_t tid,
                            void* const* tg_params, void* locals, uint32_t phase);

struct tm_launch {
    uint32_t grid[3];              // threadgroups per grid
    uint32_t tg[3];                // threads per threadgroup
    void* const* buffers;          // by [[buffer(i)]] slot
    const uint32_t* tg_lengths;    // bytes by [[threadgroup(i)]] slot
    uint32_t n_tg_slots;           // entries in tg_lengths
    uint32_t n_static_decls;       // kernel-scope `threadgroup T x[N];` declarations
    uint32_t n_workers;            // OS threads
    uint32_t stack_bytes;          // usable stack per simulated thread
    uint32_t flags;                // TM_LAUNCH_*
    tm_entry_fn entry;
    // Instrumented launches only (TM_LAUNCH_STRICT / TM_LAUNCH_COUNT):
    uint32_t n_buffers;            // entries in buffer_sizes
    const uint64_t* buffer_sizes;  // bytes by [[buffer(i)]] slot, 0 = unknown (not checked)
    struct tm_stats* stats;        // filled when TM_LAUNCH_COUNT
    // Kernels split into phases (n_phases > 0; then `entry` is null):
    tm_phase_fn phase_entry;
    uint32_t n_phases;
    uint32_t locals_size;          // bytes of one thread's locals
};

// Traffic of one memory-access site (an MSL line) of an instrumented launch.
typedef struct tm_site_stats {
    uint32_t line;                 // MSL line of the statement
    uint32_t kinds;                // TM_ACCESS_* seen on that line
    uint64_t bytes_read, bytes_written, accesses;  // accesses: lane accesses (atomics included)
    uint64_t transactions[TM_SEGMENT_SIZES];       // distinct segments per simdgroup access, summed
    uint64_t ideal_transactions;   // ceil(distinct bytes / 32) per simdgroup access, summed
} tm_site_stats;

typedef struct tm_stats {
    uint64_t global_bytes_read, global_bytes_written;
    uint64_t transactions[TM_SEGMENT_SIZES];
    uint64_t ideal_transactions;
    uint64_t threadgroup_bytes_read, threadgroup_bytes_written;
    uint64_t atomics;
    // Work counters (tm_rt_event; barriers by tm_rt_barrier): each counted once per threadgroup
    // (a barrier) or once per simdgroup (a simdgroup_matrix operation), not once per thread.
    uint64_t barriers;             // threadgroup_barrier calls completed, summed over threadgroups
    uint64_t simdgroup_matrix_loads, simdgroup_matrix_stores, simdgroup_matrix_multiply_accumulates;
    uint64_t threadgroup_memory_bytes;  // the most threadgroup memory one threadgroup of the launch took
    uint32_t n_sites, max_sites;   // sites[0 .. n_sites) are filled (at most max_sites)
    tm_site_stats* sites;
} tm_stats;

// Values of one simd collective, as seen by the lanes that took part in it.
typedef struct tm_simd_snapshot {
    uint32_t mask;                 // lanes that took part (bit i = lane i)
    uint32_t cached;               // set once a lane stored the group's result(s) in `res`
    uint32_t pad[2];
    unsigned char v[32][16];       // each participating lane's operand
    unsigned char res[32][16];     // result cache: res[0] for reductions, res[lane] for scans
} tm_simd_snapshot;

// Launch a grid; returns 0, or nonzero with a message in err.
int tm_rt_launch(const tm_launch* launch, char* err, size_t errlen);

// threadgroup_barrier: arrive, then wait until every thread of the threadgroup arrived.
// `line` is the call's MSL line (strict mode checks that all threads wait at the same barrier).
void tm_rt_barrier(uint32_t line);

// A simd collective: publish 16 bytes, wait for the lanes of this simdgroup, get their values.
// `site` identifies the call (operation, line, column): lanes meet only at the same site.
tm_simd_snapshot* tm_rt_simd_exchange(const void* value16, uint64_t site, uint32_t* lane);

// A phased kernel's thread, at the end of the phase before a simd collective: its value for the
// collective (which the thread's next phase reads through tm_rt_simd_exchange without waiting).
void tm_rt_simd_deposit(const void* value16);

// Address of kernel-scope threadgroup declaration `id` in the current threadgroup's memory
// (allocated and zeroed by the first thread that reaches it).
void* tm_rt_tg_alloc(uint32_t id, size_t size, size_t align);

// Instrumented kernels: one device or threadgroup access of `bytes` bytes at `addr`.
// `slot` is the [[buffer(i)]] the pointer derives from (-1 unknown), `line` the MSL line.
void tm_rt_access(const void* addr, uint32_t bytes, uint32_t kind, uint32_t space, int32_t slot,
                  uint32_t line);

// Instrumented kernels: one work event of the running thread (TM_EVENT_*); counted for lane 0 of
// each simdgroup, as the simdgroup does the operation once.
#define TM_EVENT_SIMDGROUP_LOAD 1u
#define TM_EVENT_SIMDGROUP_STORE 2u
#define TM_EVENT_SIMDGROUP_MULTIPLY_ACCUMULATE 3u
void tm_rt_event(uint32_t event);

// thread_index_in_threadgroup of the running thread.
uint32_t tm_rt_thread_index(void);

#ifdef __cplusplus
}
#endif

#endif  // TM_SIM_ABI_H
