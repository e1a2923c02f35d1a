// Process-level runtime: allocator settings and worker processes for the executables.
#ifndef SSM_CRUNTIME_SHIM_H
#define SSM_CRUNTIME_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/// glibc returns every freed block above the mmap threshold (128 KiB at first) to the kernel and
/// maps it again on the next allocation; tensors of a few MB churn through that, and the page
/// faults cost as much as the arithmetic. Raising the thresholds keeps freed memory in the heap.
static inline void ssm_retain_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
}

/// The opposite, for runs that report their memory (figure 6): every allocation of 256 KiB or
/// more is its own mapping, returned to the system when freed (a fixed threshold also turns off
/// glibc's dynamic one, which would move such blocks onto the heap after the first free), so the
/// resident set follows what is live and a peak measured over one cell is that cell's.
static inline void ssm_return_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

/// Starts `path` (argv, envp: NULL-terminated) as a worker process that stays in this process
/// group (so Ctrl-C reaches it), gets SIGTERM when this process dies however it dies (so it never
/// outlives the run that started it), and has its standard output on /dev/null. Returns its pid,
/// or -1 with errno set. (Foundation's Process puts children in a new process group, and cannot
/// ask for the parent-death signal.) Between fork and exec only async-signal-safe calls.
static inline pid_t ssm_spawn_worker(const char *path, char *const argv[], char *const envp[]) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) { dup2(null, 1); close(null); }
    execve(path, argv, envp);
    _exit(127);
}

/// Waits for a worker: its exit status, 128 + the signal that ended it, or -1.
static inline int ssm_wait_worker(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

#endif
