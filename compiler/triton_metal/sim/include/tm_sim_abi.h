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

typedef struct tm_launch tm_launch;

// Runs one simulated thread: builds its builtins and calls the kernel (generated per kernel).
// tg_pos is threadgroup_position_in_grid, tid is thread_index_in_threadgroup, tg_params holds
// the addresses of the [[threadgroup(i)]] parameters by slot.
typedef void (*tm_entry_fn)(const tm_launch* launch, const uint32_t* tg_pos, uint32_t tid,
                            void* const* tg_params);

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
};

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
void tm_rt_barrier(void);

// A simd collective: publish 16 bytes, wait for the lanes of this simdgroup, get their values.
// `site` identifies the call (operation, line, column): lanes meet only at the same site.
tm_simd_snapshot* tm_rt_simd_exchange(const void* value16, uint64_t site, uint32_t* lane);

// Address of kernel-scope threadgroup declaration `id` in the current threadgroup's memory
// (allocated and zeroed by the first thread that reaches it).
void* tm_rt_tg_alloc(uint32_t id, size_t size, size_t align);

#ifdef __cplusplus
}
#endif

#endif  // TM_SIM_ABI_H
