// Cooperative executor for simulated Metal threadgroups.
//
// Every thread of a threadgroup runs on a fiber with its own small stack; the fibers of one
// threadgroup run on one OS thread and switch only at threadgroup_barrier, simd collectives and
// kernel return, so barriers and simd operations are exact. Fibers are started lazily: when a
// thread returns, its fiber runs the next thread that has not started yet, so a kernel without
// collectives costs one function call per thread and one fiber per threadgroup.
// Kernels whose barriers and collectives all sit at the top level of the body are split into
// phases at build time (phase_split.py) and run without fibers: every thread runs phase 0, then
// every thread phase 1, and so on (run_phases).
// Threadgroups are spread over OS worker threads through an atomic counter. Built once into a
// shared library (see build.py) that kernel libraries call through tm_sim_abi.h.
#include "tm_sim_abi.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

// A few lines of assembly switch stacks where we know the calling convention; elsewhere
// ucontext (correct, but swapcontext makes a signal-mask syscall per switch: ~10x slower).
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && !defined(TM_SIM_FORCE_UCONTEXT)
#define TM_ASM_SWITCH 1
#else
#define TM_ASM_SWITCH 0
#include <ucontext.h>
#endif

#define TM_API extern "C" __attribute__((visibility("default")))

extern "C" [[noreturn]] void tm_fiber_main();

namespace {

constexpr uint32_t kMaxThreads = TM_MAX_THREADS_PER_THREADGROUP;
constexpr uint32_t kWidth = TM_SIMD_WIDTH;
// Threadgroup memory block of a worker: twice Metal's limit, so strict mode has room for the
// red zones it leaves between threadgroup arrays (the limit itself is checked on requested bytes).
constexpr size_t kTgArea = 2 * size_t(TM_MAX_THREADGROUP_MEMORY);
constexpr uint32_t kRedZone = 64;  // strict mode: unallocated bytes after each threadgroup array

// ---------------------------------------------------------------------------------------------
// Context switch
// ---------------------------------------------------------------------------------------------
#if TM_ASM_SWITCH
extern "C" void tm_ctx_switch(void** save_sp, void* new_sp);

// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp,
// loads new_sp and pops the registers saved there. A new fiber's stack is laid out so that the
// final `ret` enters tm_fiber_main.
#if defined(__x86_64__)
asm(R"(
    .text
    .globl tm_ctx_switch
    .hidden tm_ctx_switch
    .type tm_ctx_switch,@function
tm_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tm_ctx_switch, .-tm_ctx_switch
)");
constexpr int kSavedWords = 6;
#else  // aarch64: x19-x30 and d8-d15 are callee-saved (160 bytes, keeps sp 16-aligned)
asm(R"(
    .text
    .globl tm_ctx_switch
    .hidden tm_ctx_switch
    .type tm_ctx_switch,%function
tm_ctx_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size tm_ctx_switch, .-tm_ctx_switch
)");
#endif

struct Ctx {
    void* sp;
};

inline void ctx_switch(Ctx* from, Ctx* to) { tm_ctx_switch(&from->sp, to->sp); }

void ctx_init(Ctx* c, unsigned char* lo, unsigned char* hi) {
    (void)lo;
    uintptr_t top = reinterpret_cast<uintptr_t>(hi) & ~uintptr_t(15);
    void** s = reinterpret_cast<void**>(top);
#if defined(__x86_64__)
    *--s = nullptr;                                        // fake return address: keeps the ABI's
    *--s = reinterpret_cast<void*>(&tm_fiber_main);        // rsp % 16 == 8 at function entry
    for (int i = 0; i < kSavedWords; ++i) *--s = nullptr;  // rbp rbx r12-r15
#else
    s -= 20;                                               // the 160-byte register frame
    std::memset(s, 0, 160);
    s[11] = reinterpret_cast<void*>(&tm_fiber_main);       // x30 (link register) -> `ret` target
#endif
    c->sp = s;
}
#else
struct Ctx {
    ucontext_t uc;
};

inline void ctx_switch(Ctx* from, Ctx* to) { swapcontext(&from->uc, &to->uc); }

void ctx_init(Ctx* c, unsigned char* lo, unsigned char* hi) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size_t(hi - lo);
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, tm_fiber_main, 0);
}
#endif

// ---------------------------------------------------------------------------------------------
// Floating-point environment of the simulated threads
// ---------------------------------------------------------------------------------------------
// Apple GPUs flush subnormal float (and bfloat) operands and results of arithmetic to a zero of the
// same sign, in every math mode, while half arithmetic keeps them (triton_metal/numerics.py). The
// CPU's flush-to-zero and denormals-are-zero modes do exactly that to float arithmetic, and leave
// half values alone: they are normal floats once converted, and conversions keep every bit. The
// mode is per OS thread, so each worker sets it around the threadgroups it runs, for every
// simulated thread on it, and restores the caller's (the Python thread works too, and numpy and
// torch must keep computing with gradual underflow after the launch).
#if defined(__x86_64__)
#include <xmmintrin.h>
typedef unsigned FpEnv;
constexpr unsigned kFlushBits = 0x8040u;  // MXCSR: FTZ (bit 15) | DAZ (bit 6)
inline FpEnv fp_env_enter(bool flush) {
    const FpEnv saved = _mm_getcsr();
    _mm_setcsr(flush ? (saved | kFlushBits) : (saved & ~kFlushBits));
    return saved;
}
inline void fp_env_leave(FpEnv saved) { _mm_setcsr(saved); }
#elif defined(__aarch64__)
typedef uint64_t FpEnv;
constexpr uint64_t kFlushBits = uint64_t(1) << 24;  // FPCR.FZ: float and double (not FZ16: half keeps them)
inline FpEnv fp_env_enter(bool flush) {
    FpEnv saved;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved));
    const FpEnv set = flush ? (saved | kFlushBits) : (saved & ~kFlushBits);
    __asm__ __volatile__("msr fpcr, %0" : : "r"(set));
    return saved;
}
inline void fp_env_leave(FpEnv saved) { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved)); }
#else  // elsewhere subnormals are kept (IEEE): numerics.py and docs/compatibility.md say so
typedef int FpEnv;
inline FpEnv fp_env_enter(bool) { return 0; }
inline void fp_env_leave(FpEnv) {}
#endif

// ---------------------------------------------------------------------------------------------
// Workers: per OS thread state, pooled so stacks and threadgroup memory are reused
// ---------------------------------------------------------------------------------------------
enum : uint8_t { kRunning = 0, kWaitSimd = 1, kWaitBarrier = 2, kDone = 3 };

struct Stack {
    unsigned char* map = nullptr;  // guard page(s) first, then the usable stack
    size_t len = 0;
    size_t guard = 0;
};

// Traffic counters of one worker (TM_LAUNCH_COUNT), merged into tm_launch.stats at the end.
// A simdgroup access = the k-th execution of a site (MSL line) by each lane of a simdgroup:
// lanes are grouped by how often each has executed that site in the threadgroup so far.
struct Group {
    uint32_t n = 0;  // lanes recorded
    uint32_t len[kWidth];
    uintptr_t addr[kWidth];
};

struct Counters {
    tm_stats tot;
    std::vector<tm_site_stats> sites;
    std::vector<int32_t> index;                          // line -> sites index, -1 none
    std::vector<std::vector<uint32_t>> occurrences;      // [site][thread]
    std::vector<std::vector<std::vector<Group>>> groups;  // [site][simdgroup][occurrence]
    std::vector<std::vector<uint32_t>> used;             // [site][simdgroup]: groups in use

    void reset() {
        std::memset(&tot, 0, sizeof tot);
        sites.clear();
        index.assign(index.size(), -1);
        occurrences.clear();
        groups.clear();
        used.clear();
    }
};

struct SimdGroup {
    uint32_t base = 0;     // thread index of lane 0
    uint32_t size = 0;     // lanes (the last simdgroup may be partial)
    uint32_t running = 0;  // lanes in state kRunning
    uint64_t arrivals = 0; // numbers the lanes' arrivals at collectives
    tm_simd_snapshot snap;
};

struct Worker {
    // Pooled resources.
    size_t stack_bytes = 0;
    std::vector<Stack> stacks;
    unsigned char* tg_mem = nullptr;
    unsigned char* altstack = nullptr;
    size_t altstack_len = 0;

    // The launch and the threadgroup being run.
    const tm_launch* L = nullptr;
    uint32_t g[3] = {0, 0, 0};
    uint32_t n = 0, live = 0, arrived = 0;
    bool reverse = false;      // TM_LAUNCH_REVERSE
    uint32_t cur = 0;          // the thread running now
    uint32_t stacks_used = 0;  // fibers (stacks) handed out in this threadgroup, not counting ...
    uint32_t n_free = 0;       // ... these, which were given back
    uint16_t free_fibers[kMaxThreads];
    uint32_t tg_params_end = 0, tg_used = 0;
    void* tg_params[TM_MAX_THREADGROUP_SLOTS] = {};
    std::vector<void*> decls;
    // Instrumented launches (TM_LAUNCH_STRICT, TM_LAUNCH_COUNT).
    bool strict = false, count = false;
    uint32_t epoch = 0;                    // barriers completed in this threadgroup
    uint32_t tg_requested = 0;             // threadgroup bytes asked for (the limit applies to these)
    uint32_t tg_dirty = 0;                 // strict: shadow bytes that may be non-zero
    unsigned char* shadow = nullptr;       // strict, per threadgroup byte: 0 no array, 1 unwritten, 2 written
    uint32_t* writer = nullptr;            // strict, per byte (half and char elements of one word do not
                                           // race): last writer (thread + 1) ...
    uint32_t* writer_epoch = nullptr;      // ... in barrier interval ...
    uint32_t* reader = nullptr;            // ... and the last reader (thread + 1) ...
    uint32_t* reader_epoch = nullptr;      // ... in barrier interval
    Counters* counters = nullptr;
    volatile bool in_threadgroup = false;  // read by the fault handler
    bool failed = false;
    char err[1024] = {};
    sigjmp_buf jmp;

    // Kernels split into phases (tm_launch.n_phases > 0): no fibers; every thread runs phase p,
    // then every thread phase p + 1. A collective's values are deposited during the phase before
    // it, into the snapshot set of the phase that reads them (two sets, alternating).
    bool phased = false;
    uint32_t phase = 0;
    unsigned char* locals = nullptr;  // each thread's struct of locals, 64-byte aligned
    size_t locals_bytes = 0;
    tm_simd_snapshot phase_snap[2][kMaxThreads / kWidth];

    Ctx main;
    Ctx ctx[kMaxThreads];         // by fiber (= stack index)
    int16_t fiber_of[kMaxThreads];  // by thread: its fiber, or -1 if it has not started
    uint8_t state[kMaxThreads];
    uint64_t site[kMaxThreads];     // the collective a thread waits at ...
    uint64_t arrival[kMaxThreads];  // ... and when it arrived there
    alignas(16) unsigned char val[kMaxThreads][16];
    SimdGroup sg[kMaxThreads / kWidth];
};

// initial-exec: one %fs-relative load per access (the runtime is loaded once, early, with few TLS bytes).
__attribute__((tls_model("initial-exec"))) thread_local Worker* tls_worker = nullptr;

std::mutex g_pool_mu;
std::vector<Worker*> g_pool;

size_t page_size() {
    static const size_t p = size_t(sysconf(_SC_PAGESIZE));
    return p;
}

void free_stacks(Worker* w) {
    for (Stack& s : w->stacks) munmap(s.map, s.len);
    w->stacks.clear();
}

// Stacks are mmap'ed: pages never touched cost nothing, and a PROT_NONE guard page below each
// turns an overflow into a fault the handler can name. They stay with the worker for reuse.
bool map_stack(Worker* w) {
    const size_t pg = page_size();
    Stack s;
    s.guard = pg;
    s.len = pg + (w->stack_bytes + pg - 1) / pg * pg;
    void* m = mmap(nullptr, s.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return false;
    s.map = static_cast<unsigned char*>(m);
    mprotect(s.map, s.guard, PROT_NONE);
    w->stacks.push_back(s);
    return true;
}

Worker* acquire_worker() {
    {
        std::lock_guard<std::mutex> lock(g_pool_mu);
        if (!g_pool.empty()) {
            Worker* w = g_pool.back();
            g_pool.pop_back();
            return w;
        }
    }
    Worker* w = new Worker();
    w->tg_mem = static_cast<unsigned char*>(std::aligned_alloc(64, kTgArea));
    w->altstack_len = 64 * 1024;
    w->altstack = static_cast<unsigned char*>(std::malloc(w->altstack_len));
    return w;
}

void release_worker(Worker* w) {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    g_pool.push_back(w);
}

// ---------------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------------
[[noreturn]] void fail_now(Worker* w) {
    w->failed = true;
    if (w->phased) siglongjmp(w->jmp, 1);  // no fibers: back to run_worker like a fault
    ctx_switch(&w->ctx[w->fiber_of[w->cur]], &w->main);  // the threadgroup is abandoned
    __builtin_unreachable();
}

[[noreturn]] __attribute__((format(printf, 2, 3))) void fail(Worker* w, const char* fmt, ...) {
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
    }
    fail_now(w);
}

[[noreturn]] void deadlock(Worker* w) {
    uint32_t at_barrier = 0, done = 0;
    for (uint32_t i = 0; i < w->n; ++i) {
        at_barrier += w->state[i] == kWaitBarrier;
        done += w->state[i] == kDone;
    }
    fail(w,
         "deadlock: threadgroup_barrier not reached by all threads of threadgroup (%u,%u,%u): "
         "%u of %u threads wait at a barrier while %u returned without reaching it "
         "(a barrier inside divergent control flow is undefined behaviour on Metal)",
         w->g[0], w->g[1], w->g[2], at_barrier, w->n, done);
}

// The next runnable thread after the current one, in round-robin order (possibly itself).
// Round robin keeps the usual case O(1): the next thread has not yet reached the collective.
uint32_t next_runnable(Worker* w) {
    const uint32_t n = w->n;
    uint32_t i = w->cur;
    for (uint32_t k = 0; k < n; ++k) {
        if (w->reverse)
            i = (i == 0 ? n : i) - 1;
        else if (++i == n)
            i = 0;
        if (w->state[i] == kRunning) return i;
    }
    deadlock(w);
}

// A fiber for a thread that starts now: a stack given back in this threadgroup, else a new one.
int16_t start_fiber(Worker* w, uint32_t t) {
    int16_t f;
    if (w->n_free > 0) {
        f = int16_t(w->free_fibers[--w->n_free]);
    } else {
        if (w->stacks_used == w->stacks.size() && !map_stack(w))
            fail(w, "out of memory: cannot map the stack of a simulated thread");
        f = int16_t(w->stacks_used++);
    }
    const Stack& s = w->stacks[f];
    // Stack tops 64 bytes apart modulo a page: otherwise every fiber's hot frames fall into the
    // same L1 cache sets (the stacks are page aligned) and evict each other at every switch.
    ctx_init(&w->ctx[f], s.map + s.guard, s.map + s.len - (size_t(f) % 63u) * 64u);
    w->fiber_of[t] = f;
    return f;
}

// The current thread waits: run the next runnable thread until someone makes us runnable again.
void schedule(Worker* w) {
    const uint32_t me = w->cur;
    const uint32_t i = next_runnable(w);
    if (i == me) return;
    const int16_t target = w->fiber_of[i] >= 0 ? w->fiber_of[i] : start_fiber(w, i);
    w->cur = i;
    ctx_switch(&w->ctx[w->fiber_of[me]], &w->ctx[target]);  // whoever resumes us sets cur = me
}

// Called when no lane of the simdgroup is running any more: the lanes waiting at one collective
// site complete it together. Lanes that returned, wait at a barrier or wait at another site are
// inactive for this collective, as on Metal with divergent lanes. The site waited at longest
// goes first: after `if (c) a = simd_sum(x); else b = simd_max(x);` both branches complete
// before a collective after the if/else, which then sees all lanes again (reconvergence).
// Values are copied into the snapshot so that a released lane can publish its next value
// before a slower lane has read this one.
void release_simd(Worker* w, SimdGroup& s) {
    uint64_t key = 0, first = UINT64_MAX;
    for (uint32_t t = s.base; t < s.base + s.size; ++t) {
        if (w->state[t] == kWaitSimd && w->arrival[t] < first) {
            first = w->arrival[t];
            key = w->site[t];
        }
    }
    if (first == UINT64_MAX) return;  // nobody waits at a collective
    uint32_t mask = 0;
    for (uint32_t l = 0; l < s.size; ++l) {
        const uint32_t t = s.base + l;
        if (w->state[t] != kWaitSimd || w->site[t] != key) continue;
        mask |= 1u << l;
        std::memcpy(s.snap.v[l], w->val[t], 16);
        w->state[t] = kRunning;
    }
    s.snap.mask = mask;
    s.snap.cached = 0;
    s.running += uint32_t(__builtin_popcount(mask));
}

void init_threadgroup(Worker* w, uint64_t idx) {
    const tm_launch* L = w->L;
    w->g[0] = uint32_t(idx % L->grid[0]);
    w->g[1] = uint32_t(idx / L->grid[0] % L->grid[1]);
    w->g[2] = uint32_t(idx / (uint64_t(L->grid[0]) * L->grid[1]));
    const uint32_t n = w->n;
    w->live = n;
    w->arrived = 0;
    w->cur = w->reverse ? n - 1 : 0;
    w->failed = false;
    w->stacks_used = 0;
    w->n_free = 0;
    std::memset(w->state, kRunning, n);
    std::memset(w->fiber_of, 0xff, n * sizeof w->fiber_of[0]);
    for (uint32_t b = 0, k = 0; b < n; b += kWidth, ++k) {
        w->sg[k].base = b;
        w->sg[k].size = std::min(kWidth, n - b);
        w->sg[k].running = w->sg[k].size;
        w->sg[k].arrivals = 0;
    }
    // Threadgroup memory starts zeroed; kernel-scope declarations are zeroed when allocated.
    // Strict mode fills it with 0xff bytes instead (NaN for floats, as uninitialised as it gets)
    // and marks the [[threadgroup(i)]] slots as allocated but unwritten.
    w->epoch = 1;
    w->tg_requested = w->tg_params_end;
    if (w->strict) {
        std::memset(w->shadow, 0, w->tg_dirty);
        std::memset(w->writer, 0, w->tg_dirty * sizeof(uint32_t));
        std::memset(w->reader, 0, w->tg_dirty * sizeof(uint32_t));
        std::memset(w->tg_mem, 0xff, w->tg_params_end);
        uint32_t off = 0;
        for (uint32_t s = 0; s < w->L->n_tg_slots && s < TM_MAX_THREADGROUP_SLOTS; ++s) {
            const uint32_t len = (w->L->tg_lengths[s] + 15u) & ~15u;
            std::memset(w->shadow + off, 1, w->L->tg_lengths[s]);
            off += len + kRedZone;
        }
        w->tg_requested = 0;
        for (uint32_t s = 0; s < w->L->n_tg_slots; ++s) w->tg_requested += (w->L->tg_lengths[s] + 15u) & ~15u;
        w->tg_dirty = w->tg_params_end;
    } else {
        std::memset(w->tg_mem, 0, w->tg_params_end);
    }
    w->tg_used = w->tg_params_end;
    std::fill(w->decls.begin(), w->decls.end(), nullptr);
}

// Runs the threadgroup of a phased kernel: phase by phase, each for every thread in schedule order.
void run_phases(Worker* w) {
    const tm_launch* L = w->L;
    const uint32_t n = w->n;
    const size_t stride = (size_t(L->locals_size) + 63) & ~size_t(63);
    if (w->locals_bytes < stride * n) {
        std::free(w->locals);
        w->locals_bytes = stride * n;
        w->locals = static_cast<unsigned char*>(std::aligned_alloc(64, w->locals_bytes));
        if (w->locals == nullptr) {
            w->locals_bytes = 0;
            fail(w, "out of memory: cannot allocate the locals of a threadgroup's threads");
        }
    }
    for (uint32_t p = 0; p < L->n_phases; ++p) {
        w->phase = p;
        tm_simd_snapshot* next = w->phase_snap[(p + 1) & 1];  // deposits of this phase go there
        for (uint32_t k = 0; k * kWidth < n; ++k) {
            next[k].mask = w->sg[k].size == 32 ? ~0u : (1u << w->sg[k].size) - 1u;
            next[k].cached = 0;
        }
        for (uint32_t i = 0; i < n; ++i) {
            const uint32_t t = w->reverse ? n - 1 - i : i;
            w->cur = t;
            L->phase_entry(L, w->g, t, w->tg_params, w->locals + stride * t, p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults: a kernel's invalid access or integer division by zero becomes an error, not a crash
// ---------------------------------------------------------------------------------------------
constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
constexpr int kNumFaultSignals = sizeof kFaultSignals / sizeof kFaultSignals[0];
struct sigaction g_prev_action[kNumFaultSignals];
std::mutex g_signal_mu;

void on_fault(int sig, siginfo_t* si, void* uc);

int signal_slot(int sig) {
    for (int i = 0; i < kNumFaultSignals; ++i)
        if (kFaultSignals[i] == sig) return i;
    return 0;
}

void describe_fault(Worker* w, int sig, siginfo_t* si) {
    const uint32_t t = w->cur;
    const unsigned char* addr = static_cast<const unsigned char*>(si->si_addr);
    if (sig == SIGFPE) {
        std::snprintf(w->err, sizeof w->err,
                      "arithmetic trap (SIGFPE, integer division by zero or overflow) in thread %u of "
                      "threadgroup (%u,%u,%u): a GPU returns an undefined value there, the CPU traps; "
                      "guard the divisor",
                      t, w->g[0], w->g[1], w->g[2]);
        return;
    }
    if (sig == SIGILL) {  // the strict build's trap on undefined integer behaviour (build.py)
        std::snprintf(w->err, sizeof w->err,
                      "undefined integer behaviour (signed overflow or a shift by the type's width or more) in "
                      "thread %u of threadgroup (%u,%u,%u): undefined in MSL, Apple's compiler may assume it "
                      "never happens; compute in an unsigned type where wrapping is meant",
                      t, w->g[0], w->g[1], w->g[2]);
        return;
    }
    for (const Stack& s : w->stacks) {
        if (addr >= s.map && addr < s.map + s.guard) {
            std::snprintf(w->err, sizeof w->err,
                          "stack overflow in simulated thread %u of threadgroup (%u,%u,%u): each thread "
                          "has %zu KiB of stack; set TRITON_METAL_SIM_STACK_KB higher or use less "
                          "thread-private memory",
                          t, w->g[0], w->g[1], w->g[2], w->stack_bytes / 1024);
            return;
        }
    }
    std::snprintf(w->err, sizeof w->err,
                  "invalid memory access (%s at address %p) in thread %u of threadgroup (%u,%u,%u): the "
                  "kernel read or wrote memory outside its buffers",
                  sig == SIGBUS ? "SIGBUS" : "SIGSEGV", si->si_addr, t, w->g[0], w->g[1], w->g[2]);
}

void on_fault(int sig, siginfo_t* si, void* uc) {
    Worker* w = tls_worker;
    if (w != nullptr && w->in_threadgroup) {
        describe_fault(w, sig, si);
        w->failed = true;
        siglongjmp(w->jmp, 1);
    }
    // Not a simulated thread: behave as if we had never been installed.
    struct sigaction* prev = &g_prev_action[signal_slot(sig)];
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        struct sigaction dfl;
        std::memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, nullptr);  // returning re-executes the fault, now fatal as usual
    } else {
        prev->sa_handler(sig);
    }
}

// (Re)installed at each launch: someone (faulthandler, say) may have replaced it meanwhile.
void install_fault_handlers() {
    std::lock_guard<std::mutex> lock(g_signal_mu);
    for (int i = 0; i < kNumFaultSignals; ++i) {
        struct sigaction cur;
        sigaction(kFaultSignals[i], nullptr, &cur);
        if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault) continue;
        g_prev_action[i] = cur;
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(kFaultSignals[i], &sa, nullptr);
    }
}

// ---------------------------------------------------------------------------------------------
// Instrumented kernels: strict-mode checks and traffic counters (tm_rt_access)
// ---------------------------------------------------------------------------------------------
const char* access_name(uint32_t kind) {
    return kind == TM_ACCESS_LOAD ? "load" : kind == TM_ACCESS_STORE ? "store" : "atomic";
}

// "thread (x,y,z) of threadgroup (x,y,z) (thread_position_in_grid (x,y,z))"
void describe_thread(const Worker* w, uint32_t t, char* out, size_t len) {
    const tm_launch* L = w->L;
    const uint32_t lx = t % L->tg[0], ly = t / L->tg[0] % L->tg[1], lz = t / (L->tg[0] * L->tg[1]);
    std::snprintf(out, len, "thread (%u,%u,%u) of threadgroup (%u,%u,%u) (thread_position_in_grid (%u,%u,%u))", lx,
                  ly, lz, w->g[0], w->g[1], w->g[2], w->g[0] * L->tg[0] + lx, w->g[1] * L->tg[1] + ly,
                  w->g[2] * L->tg[2] + lz);
}

// 1 inside buffer `slot`, 0 outside, -1 when its size is unknown.
int inside_buffer(const tm_launch* L, int32_t slot, uintptr_t a, uint32_t bytes) {
    const uint64_t size = uint32_t(slot) < L->n_buffers ? L->buffer_sizes[slot] : 0;
    const uintptr_t base = reinterpret_cast<uintptr_t>(L->buffers[slot]);
    if (size == 0 || base == 0) return -1;
    return a >= base && a - base + bytes <= size ? 1 : 0;
}

void check_device(Worker* w, uintptr_t a, uint32_t bytes, uint32_t kind, int32_t slot, uint32_t line) {
    const tm_launch* L = w->L;
    char who[192];
    if (slot >= 0 && uint32_t(slot) < L->n_buffers) {
        if (inside_buffer(L, slot, a, bytes) != 0) return;
        describe_thread(w, w->cur, who, sizeof who);
        const long long off = (long long)(a - reinterpret_cast<uintptr_t>(L->buffers[slot]));
        fail(w,
             "strict mode: out-of-bounds %s of %u bytes at byte offset %lld of {buffer:%d}, which has %llu "
             "bytes, by %s, at MSL line %u",
             access_name(kind), bytes, off, slot, (unsigned long long)L->buffer_sizes[slot], who, line);
    }
    for (uint32_t s = 0; s < L->n_buffers; ++s)
        if (inside_buffer(L, int32_t(s), a, bytes) != 0) return;  // inside one, or a size is unknown
    describe_thread(w, w->cur, who, sizeof who);
    fail(w, "strict mode: %s of %u bytes at address %p, outside every buffer of the launch, by %s, at MSL line %u",
         access_name(kind), bytes, reinterpret_cast<void*>(a), who, line);
}

// Metal requires an access aligned to its type's alignment: a float4 to 16 bytes (a packed_float4 to
// 4). Buffers are page aligned on Metal, host allocations need not be: the offset into the buffer counts.
void check_alignment(Worker* w, uintptr_t a, uint32_t bytes, uint32_t align, uint32_t kind, int32_t slot,
                     uint32_t line) {
    const bool known = slot >= 0 && uint32_t(slot) < w->L->n_buffers && w->L->buffers[slot] != nullptr;
    const uintptr_t off = known ? a - reinterpret_cast<uintptr_t>(w->L->buffers[slot]) : a;
    if (off % align == 0) return;
    char who[192];
    describe_thread(w, w->cur, who, sizeof who);
    char where[96];
    if (known)
        std::snprintf(where, sizeof where, "byte offset %llu of {buffer:%d}", (unsigned long long)off, slot);
    else
        std::snprintf(where, sizeof where, "address %p", reinterpret_cast<void*>(a));
    fail(w, "strict mode: misaligned %s of %u bytes at %s: its type needs %u-byte alignment (Metal: a vector "
         "access is aligned to its size, a packed_ vector to its element), by %s, at MSL line %u",
         access_name(kind), bytes, where, align, who, line);
}

void check_threadgroup(Worker* w, uintptr_t a, uint32_t bytes, uint32_t kind, uint32_t line, bool same_value) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(w->tg_mem);
    const uint32_t t = w->cur;
    char who[192];
    const size_t off = a - base;
    if (a < base || off + bytes > kTgArea) {
        describe_thread(w, t, who, sizeof who);
        fail(w, "strict mode: threadgroup %s of %u bytes at address %p, outside threadgroup memory, by %s, at MSL "
             "line %u", access_name(kind), bytes, reinterpret_cast<void*>(a), who, line);
    }
    for (size_t i = off; i < off + bytes; ++i) {
        if (w->shadow[i] != 0) continue;
        describe_thread(w, t, who, sizeof who);
        fail(w, "strict mode: out-of-bounds threadgroup %s of %u bytes at threadgroup byte offset %zu (outside "
             "every threadgroup array and [[threadgroup(i)]] slot) by %s, at MSL line %u",
             access_name(kind), bytes, off, who, line);
    }
    if (kind == TM_ACCESS_LOAD) {
        for (size_t i = off; i < off + bytes; ++i) {
            if (w->shadow[i] == 2) continue;
            describe_thread(w, t, who, sizeof who);
            fail(w, "strict mode: read of uninitialised threadgroup memory (%u bytes at threadgroup byte offset %zu, "
                 "never written in this threadgroup; Metal does not zero threadgroup memory) by %s, at MSL line %u",
                 bytes, off, who, line);
        }
    } else {
        std::memset(w->shadow + off, 2, bytes);
    }
    if (kind == TM_ACCESS_ATOMIC) return;
    // Races: another simdgroup's write (or, for a write, read) since the last threadgroup_barrier.
    // A store of the value already there does not count (replicated threads writing the same value).
    for (size_t wd = off; wd < off + bytes; ++wd) {
        const uint32_t wr = w->writer_epoch[wd] == w->epoch ? w->writer[wd] : 0;
        const uint32_t rd = w->reader_epoch[wd] == w->epoch ? w->reader[wd] : 0;
        const bool check = !(kind == TM_ACCESS_STORE && same_value);
        const uint32_t other = !check ? 0
                               : wr != 0 && (wr - 1) / kWidth != t / kWidth ? wr
                               : kind == TM_ACCESS_STORE && rd != 0 && (rd - 1) / kWidth != t / kWidth ? rd : 0;
        if (other != 0) {
            char first[192];
            describe_thread(w, other - 1, first, sizeof first);
            describe_thread(w, t, who, sizeof who);
            fail(w, "strict mode: threadgroup memory race at threadgroup byte offset %zu: %s %s it and then %s %s it "
                 "(MSL line %u) with no threadgroup_barrier in between",
                 wd, first, other == wr ? "wrote" : "read", who, kind == TM_ACCESS_STORE ? "wrote" : "read",
                 line);
        }
        if (kind == TM_ACCESS_STORE) {
            w->writer[wd] = t + 1;
            w->writer_epoch[wd] = w->epoch;
        } else {
            w->reader[wd] = t + 1;
            w->reader_epoch[wd] = w->epoch;
        }
    }
}

void count_device(Worker* w, uintptr_t a, uint32_t bytes, uint32_t kind, uint32_t line) {
    Counters& c = *w->counters;
    if (line >= c.index.size()) c.index.resize(line + 1024, -1);
    uint32_t idx;
    if (c.index[line] < 0) {
        idx = uint32_t(c.sites.size());
        c.index[line] = int32_t(idx);
        tm_site_stats site;
        std::memset(&site, 0, sizeof site);
        site.line = line;
        c.sites.push_back(site);
        c.occurrences.emplace_back(kMaxThreads, 0u);
        c.groups.emplace_back(kMaxThreads / kWidth);
        c.used.emplace_back(kMaxThreads / kWidth, 0u);
    } else {
        idx = uint32_t(c.index[line]);
    }
    tm_site_stats& site = c.sites[idx];
    site.kinds |= kind;
    site.accesses++;
    if (kind == TM_ACCESS_ATOMIC) {
        c.tot.atomics++;
        return;
    }
    if (kind == TM_ACCESS_LOAD) {
        site.bytes_read += bytes;
        c.tot.global_bytes_read += bytes;
    } else {
        site.bytes_written += bytes;
        c.tot.global_bytes_written += bytes;
    }
    const uint32_t t = w->cur, sg = t / kWidth;
    const uint32_t k = c.occurrences[idx][t]++;
    std::vector<Group>& groups = c.groups[idx][sg];
    if (groups.size() <= k) groups.resize(k + 1);
    Group& g = groups[k];
    if (g.n < kWidth) {
        g.len[g.n] = bytes;
        g.addr[g.n++] = a;
    }
    if (c.used[idx][sg] <= k) c.used[idx][sg] = k + 1;
}

// Transactions of one simdgroup access: distinct segments touched, and the ideal count.
void finish_group(Group& g, tm_site_stats& site, tm_stats& tot) {
    uintptr_t seg[2 * kWidth + 2];
    for (int j = 0; j < TM_SEGMENT_SIZES; ++j) {
        const int shift = 5 + j;  // 32, 64, 128 bytes
        uint32_t m = 0;
        for (uint32_t l = 0; l < g.n; ++l) {
            const uintptr_t first = g.addr[l] >> shift, last = (g.addr[l] + g.len[l] - 1) >> shift;
            seg[m++] = first;
            if (last != first) seg[m++] = last;  // accesses are at most 16 bytes: two segments at most
        }
        std::sort(seg, seg + m);
        const uint64_t distinct = uint64_t(std::unique(seg, seg + m) - seg);
        site.transactions[j] += distinct;
        tot.transactions[j] += distinct;
    }
    uintptr_t a[kWidth];
    std::copy(g.addr, g.addr + g.n, a);
    std::sort(a, a + g.n);
    uint64_t unique_bytes = 0;
    for (uint32_t l = 0; l < g.n; ++l)
        if (l == 0 || a[l] != a[l - 1]) unique_bytes += g.len[0];
    const uint64_t ideal = (unique_bytes + 31) / 32;
    site.ideal_transactions += ideal;
    tot.ideal_transactions += ideal;
    g.n = 0;
}

void finish_groups(Worker* w) {
    Counters& c = *w->counters;
    for (size_t idx = 0; idx < c.sites.size(); ++idx) {
        for (size_t sg = 0; sg < c.groups[idx].size(); ++sg) {
            for (uint32_t k = 0; k < c.used[idx][sg]; ++k) finish_group(c.groups[idx][sg][k], c.sites[idx], c.tot);
            c.used[idx][sg] = 0;
        }
        std::fill(c.occurrences[idx].begin(), c.occurrences[idx].end(), 0u);
    }
}

void merge_counters(const Counters* c, tm_stats* out) {
    out->global_bytes_read += c->tot.global_bytes_read;
    out->global_bytes_written += c->tot.global_bytes_written;
    for (int j = 0; j < TM_SEGMENT_SIZES; ++j) out->transactions[j] += c->tot.transactions[j];
    out->ideal_transactions += c->tot.ideal_transactions;
    out->threadgroup_bytes_read += c->tot.threadgroup_bytes_read;
    out->threadgroup_bytes_written += c->tot.threadgroup_bytes_written;
    out->atomics += c->tot.atomics;
    out->barriers += c->tot.barriers;
    out->simdgroup_matrix_loads += c->tot.simdgroup_matrix_loads;
    out->simdgroup_matrix_stores += c->tot.simdgroup_matrix_stores;
    out->simdgroup_matrix_multiply_accumulates += c->tot.simdgroup_matrix_multiply_accumulates;
    out->threadgroup_memory_bytes = std::max(out->threadgroup_memory_bytes, c->tot.threadgroup_memory_bytes);
    for (const tm_site_stats& s : c->sites) {
        tm_site_stats* dst = nullptr;
        for (uint32_t i = 0; i < out->n_sites; ++i)
            if (out->sites[i].line == s.line) dst = &out->sites[i];
        if (dst == nullptr) {
            if (out->n_sites == out->max_sites) continue;  // Python sizes the array generously
            dst = &out->sites[out->n_sites++];
            std::memset(dst, 0, sizeof *dst);
            dst->line = s.line;
        }
        dst->kinds |= s.kinds;
        dst->bytes_read += s.bytes_read;
        dst->bytes_written += s.bytes_written;
        dst->accesses += s.accesses;
        for (int j = 0; j < TM_SEGMENT_SIZES; ++j) dst->transactions[j] += s.transactions[j];
        dst->ideal_transactions += s.ideal_transactions;
    }
}

// ---------------------------------------------------------------------------------------------
// Launch
// ---------------------------------------------------------------------------------------------
struct Shared {
    const tm_launch* L;
    uint64_t total;
    std::atomic<uint64_t> next{0};
    std::atomic<bool> abort{false};
    std::mutex mu;
    bool has_error = false;
    char err[1024] = {};

    void set_error(const char* msg) {
        std::lock_guard<std::mutex> lock(mu);
        if (!has_error) {
            has_error = true;
            std::snprintf(err, sizeof err, "%s", msg);
        }
        abort.store(true, std::memory_order_relaxed);
    }
};

void run_worker(Shared* sh) {
    const tm_launch* L = sh->L;
    Worker* w = acquire_worker();
    w->L = L;
    w->n = L->tg[0] * L->tg[1] * L->tg[2];
    w->reverse = (L->flags & TM_LAUNCH_REVERSE) != 0;
    w->phased = L->n_phases > 0;
    if (w->stack_bytes != L->stack_bytes) {
        free_stacks(w);
        w->stack_bytes = L->stack_bytes;
    }
    w->strict = (L->flags & TM_LAUNCH_STRICT) != 0;
    w->count = (L->flags & TM_LAUNCH_COUNT) != 0 && L->stats != nullptr;
    if (w->strict && w->shadow == nullptr) {
        w->shadow = static_cast<unsigned char*>(std::calloc(kTgArea, 1));
        for (uint32_t** a : {&w->writer, &w->writer_epoch, &w->reader, &w->reader_epoch})
            *a = static_cast<uint32_t*>(std::calloc(kTgArea, sizeof(uint32_t)));
        w->tg_dirty = 0;
    }
    if (w->count) {
        if (w->counters == nullptr) w->counters = new Counters();
        w->counters->reset();
    }
    uint32_t off = 0;
    for (uint32_t s = 0; s < L->n_tg_slots && s < TM_MAX_THREADGROUP_SLOTS; ++s) {
        w->tg_params[s] = w->tg_mem + off;
        off += ((L->tg_lengths[s] + 15u) & ~15u) + (w->strict ? kRedZone : 0u);
    }
    w->tg_params_end = off;
    w->decls.assign(L->n_static_decls, nullptr);

    stack_t ss, old_ss;
    ss.ss_sp = w->altstack;
    ss.ss_size = w->altstack_len;
    ss.ss_flags = 0;
    sigaltstack(&ss, &old_ss);
    tls_worker = w;
    const FpEnv fp_saved = fp_env_enter((L->flags & TM_LAUNCH_FLUSH_DENORMALS) != 0);

    if (sigsetjmp(w->jmp, 1) == 0) {
        while (!sh->abort.load(std::memory_order_relaxed)) {
            const uint64_t idx = sh->next.fetch_add(1, std::memory_order_relaxed);
            if (idx >= sh->total) break;
            init_threadgroup(w, idx);
            if (w->phased) {
                w->in_threadgroup = true;
                run_phases(w);
                w->in_threadgroup = false;
                continue;
            }
            if (w->stacks.empty() && !map_stack(w)) {  // start_fiber can then not fail
                sh->set_error("out of memory: cannot map the stack of a simulated thread");
                break;
            }
            const int16_t f = start_fiber(w, w->cur);
            w->in_threadgroup = true;
            ctx_switch(&w->main, &w->ctx[f]);
            w->in_threadgroup = false;
            if (w->failed) {
                sh->set_error(w->err);
                break;
            }
            if (w->count) {
                finish_groups(w);
                uint64_t& tg_bytes = w->counters->tot.threadgroup_memory_bytes;
                tg_bytes = std::max<uint64_t>(tg_bytes, w->tg_requested);  // what this threadgroup allocated
            }
        }
    } else {  // back from the fault handler
        w->in_threadgroup = false;
        sh->set_error(w->err);
    }

    fp_env_leave(fp_saved);  // also after a fault: the handler longjmps back here
    tls_worker = nullptr;
    sigaltstack(&old_ss, nullptr);
    if (w->count) {
        std::lock_guard<std::mutex> lock(sh->mu);
        merge_counters(w->counters, L->stats);
    }
    release_worker(w);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The C interface
// ---------------------------------------------------------------------------------------------
// Every fiber starts here and runs threads until it finds the next runnable thread already
// running on a fiber of its own; then it gives its stack back and switches there for good.
extern "C" [[noreturn]] void tm_fiber_main() {
    Worker* w = tls_worker;
    const tm_launch* L = w->L;
    const int16_t f = w->fiber_of[w->cur];
    for (;;) {
        const uint32_t t = w->cur;
        L->entry(L, w->g, t, w->tg_params);
        // Thread t returned from the kernel.
        w->state[t] = kDone;
        SimdGroup& s = w->sg[t / kWidth];
        if (--s.running == 0) release_simd(w, s);
        if (--w->live == 0) ctx_switch(&w->ctx[f], &w->main);  // never resumed
        const uint32_t i = next_runnable(w);
        w->cur = i;
        if (w->fiber_of[i] < 0) {
            w->fiber_of[i] = f;  // not started yet: run it on this fiber
            continue;
        }
        w->free_fibers[w->n_free++] = uint16_t(f);
        ctx_switch(&w->ctx[f], &w->ctx[w->fiber_of[i]]);  // never resumed
    }
}

TM_API void tm_rt_barrier(uint32_t line) {
    Worker* w = tls_worker;
    if (w->phased) fail(w, "internal error: threadgroup_barrier at MSL line %u of a kernel split into phases", line);
    const uint32_t t = w->cur;
    w->state[t] = kWaitBarrier;
    w->site[t] = line;
    SimdGroup& s = w->sg[t / kWidth];
    s.running--;
    if (++w->arrived == w->n) {  // the last one: everybody goes on, this thread first
        if (w->count) w->counters->tot.barriers++;  // once per threadgroup, not per thread
        if (w->strict) {
            for (uint32_t i = 0; i < w->n; ++i) {
                if (w->site[i] == line) continue;
                char a[192], b[192];
                describe_thread(w, i, a, sizeof a);
                describe_thread(w, t, b, sizeof b);
                fail(w, "strict mode: the threads of threadgroup (%u,%u,%u) met at different threadgroup_barrier "
                     "calls: %s at MSL line %u, %s at MSL line %u (every thread must reach the same barrier)",
                     w->g[0], w->g[1], w->g[2], a, unsigned(w->site[i]), b, line);
            }
        }
        w->epoch++;
        w->arrived = 0;
        std::memset(w->state, kRunning, w->n);
        for (uint32_t b = 0, k = 0; b < w->n; b += kWidth, ++k) w->sg[k].running = w->sg[k].size;
        return;
    }
    if (s.running == 0) release_simd(w, s);
    schedule(w);
}

TM_API tm_simd_snapshot* tm_rt_simd_exchange(const void* value16, uint64_t site, uint32_t* lane) {
    Worker* w = tls_worker;
    const uint32_t t = w->cur;
    if (w->phased) {  // every lane deposited its value in the previous phase
        *lane = t % kWidth;
        return &w->phase_snap[w->phase & 1][t / kWidth];
    }
    std::memcpy(w->val[t], value16, 16);
    w->site[t] = site;
    w->state[t] = kWaitSimd;
    SimdGroup& s = w->sg[t / kWidth];
    w->arrival[t] = s.arrivals++;
    if (--s.running == 0) release_simd(w, s);
    if (w->state[t] != kRunning) schedule(w);
    *lane = t % kWidth;
    return &s.snap;
}

TM_API void tm_rt_simd_deposit(const void* value16) {
    Worker* w = tls_worker;
    const uint32_t t = w->cur;
    std::memcpy(w->phase_snap[(w->phase + 1) & 1][t / kWidth].v[t % kWidth], value16, 16);
}

TM_API void* tm_rt_tg_alloc(uint32_t id, size_t size, size_t align) {
    Worker* w = tls_worker;
    if (id >= w->decls.size()) fail(w, "internal error: threadgroup declaration %u of %zu", id, w->decls.size());
    void*& p = w->decls[id];
    if (p != nullptr) return p;
    align = std::max<size_t>(align, 16);
    const size_t need = w->tg_requested + (size + 15) / 16 * 16;
    if (need > TM_MAX_THREADGROUP_MEMORY)
        fail(w,
             "threadgroup memory limit exceeded: the kernel's threadgroup arrays (declared in the "
             "kernel and passed as threadgroup_lengths) need at least %zu bytes, more than Metal's "
             "%u bytes (maxThreadgroupMemoryLength); use smaller tiles or fewer threadgroup arrays",
             need, TM_MAX_THREADGROUP_MEMORY);
    const size_t off = (w->tg_used + align - 1) / align * align;
    p = w->tg_mem + off;
    w->tg_requested = uint32_t(need);
    w->tg_used = uint32_t(off + size + (w->strict ? kRedZone : 0));
    if (w->strict) {  // unwritten, and poisoned so that unchecked reads see NaN rather than zero
        std::memset(p, 0xff, size);
        std::memset(w->shadow + off, 1, size);
        w->tg_dirty = std::max(w->tg_dirty, w->tg_used);
    } else {
        std::memset(p, 0, size);
    }
    return p;
}

TM_API void tm_rt_access(const void* addr, uint32_t bytes, uint32_t kind, uint32_t space, int32_t slot,
                          uint32_t line) {
    Worker* w = tls_worker;
    const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    const bool same_value = (kind & TM_ACCESS_SAME_VALUE) != 0;
    const uint32_t align = 1u << (kind >> TM_ACCESS_ALIGN_SHIFT & 0xffu);
    kind &= ~TM_ACCESS_SAME_VALUE & ((1u << TM_ACCESS_ALIGN_SHIFT) - 1u);
    if (space != TM_SPACE_THREADGROUP) {  // device or constant: a buffer
        if (w->strict) check_device(w, a, bytes, kind, slot, line);
        if (w->strict) check_alignment(w, a, bytes, align, kind, slot, line);
        // Segments are counted from the start of the buffer (Metal buffers are page aligned; host
        // allocations are not, and the counts must not depend on where the allocator put them).
        const uintptr_t base = slot >= 0 && uint32_t(slot) < w->L->n_buffers
                                   ? reinterpret_cast<uintptr_t>(w->L->buffers[slot]) : 0;
        if (w->count) count_device(w, a - base, bytes, kind, line);
        return;
    }
    if (w->strict) check_threadgroup(w, a, bytes, kind, line, same_value);
    if (w->count) {
        Counters& c = *w->counters;
        if (kind == TM_ACCESS_ATOMIC)
            c.tot.atomics++;
        else
            (kind == TM_ACCESS_LOAD ? c.tot.threadgroup_bytes_read : c.tot.threadgroup_bytes_written) += bytes;
    }
}

TM_API uint32_t tm_rt_thread_index(void) { return tls_worker->cur; }

TM_API void tm_rt_event(uint32_t event) {
    Worker* w = tls_worker;
    if (!w->count || w->cur % kWidth != 0) return;  // every lane calls; the simdgroup did it once
    tm_stats& t = w->counters->tot;
    switch (event) {
        case TM_EVENT_SIMDGROUP_LOAD: t.simdgroup_matrix_loads++; break;
        case TM_EVENT_SIMDGROUP_STORE: t.simdgroup_matrix_stores++; break;
        case TM_EVENT_SIMDGROUP_MULTIPLY_ACCUMULATE: t.simdgroup_matrix_multiply_accumulates++; break;
        default: fail(w, "internal error: unknown simulator event %u", event);
    }
}

TM_API int tm_rt_launch(const tm_launch* L, char* err, size_t errlen) {
    const uint64_t n = uint64_t(L->tg[0]) * L->tg[1] * L->tg[2];
    if (n == 0 || n > kMaxThreads) {
        std::snprintf(err, errlen, "threadgroup of %llu threads: Metal allows 1 to %u threads per threadgroup",
                      (unsigned long long)n, kMaxThreads);
        return 1;
    }
    uint64_t tg_bytes = 0;
    for (uint32_t s = 0; s < L->n_tg_slots; ++s) tg_bytes += (L->tg_lengths[s] + 15u) & ~15u;
    if (L->n_tg_slots > TM_MAX_THREADGROUP_SLOTS || tg_bytes > TM_MAX_THREADGROUP_MEMORY) {
        std::snprintf(err, errlen, "threadgroup_lengths total %llu bytes: Metal allows at most %u bytes",
                      (unsigned long long)tg_bytes, TM_MAX_THREADGROUP_MEMORY);
        return 1;
    }
    const uint64_t total = uint64_t(L->grid[0]) * L->grid[1] * L->grid[2];
    if (total == 0) return 0;

    install_fault_handlers();
    Shared sh;
    sh.L = L;
    sh.total = total;
    const uint64_t nw = std::max<uint64_t>(1, std::min<uint64_t>(L->n_workers, total));
    std::vector<std::thread> threads;
    for (uint64_t i = 1; i < nw; ++i) {
        try {
            threads.emplace_back(run_worker, &sh);
        } catch (...) {
            break;  // fewer workers is still correct
        }
    }
    run_worker(&sh);  // the calling thread works too
    for (std::thread& t : threads) t.join();
    if (sh.has_error) {
        std::snprintf(err, errlen, "%s", sh.err);
        return 1;
    }
    return 0;
}
