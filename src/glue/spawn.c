/* Starting, signalling and reaping the exec children (src/glue/spawn.rs), in C because
 * what runs between clone and execve must be async-signal-safe system calls only.
 *
 * nginx's SIGCHLD handler reaps every child of a worker with waitpid(-1) (and logs an
 * alert for one killed by a signal), so a command the worker started directly could not
 * be reaped by us, nor its status known. So the worker clones a small keeper without an
 * exit signal (and with a pidfd), which waitpid(-1) never waits for: the keeper starts
 * the command, waits for it and ends the same way (its exit code, or killed by the same
 * signal); the worker learns that through the keeper's pidfd. Keeper and command share
 * a process group of their own, which is what gets signalled; the keeper ignores the
 * stop signals, the command has the default ones. Either dies with its parent. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

struct ngx_rtmp_rs_redirect {
    int fd;
    /* path == NULL: dup2(to, fd) */
    int to;
    const char *path;
    /* 0 read, 1 write (truncate), 2 append */
    int mode;
};

/* nginx's: the keeper's title in ps ("nginx: exec keeper"), not a second worker's. */
extern void ngx_setproctitle(char *title);

static void say(const char *a, const char *b)
{
    ssize_t r;
    r = write(2, a, strlen(a));
    if (b) {
        r = write(2, b, strlen(b));
    }
    r = write(2, "\n", 1);
    (void) r;
}

/* Starts `path` with `argv` and `envp` in a process group of its own, stdin /dev/null,
 * stdout and stderr the write end of a new pipe (then the redirections, in order). Returns
 * the pid, or -errno; `*pidfd` and `*out` (the pipe's non-blocking read end) are the
 * parent's. */
int ngx_rtmp_rs_spawn(const char *path, char *const argv[], char *const envp[],
    const struct ngx_rtmp_rs_redirect *r, int nr, int *pidfd, int *out)
{
    int p[2], devnull, fd = -1, i, e;
    long pid;
    pid_t parent = getpid();

    if (pipe2(p, O_CLOEXEC) == -1) {
        return -errno;
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull == -1) {
        e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }

    pid = syscall(SYS_clone, (unsigned long) CLONE_PIDFD, 0UL, &fd, 0UL, 0UL);

    if (pid == 0) {
        struct sigaction act;
        sigset_t none;
        long cmd;
        int status;
        pid_t keeper;

        /* The keeper: every signal ignored but those it must die of. */
        memset(&act, 0, sizeof(act));
        for (i = 1; i < NSIG; i++) {
            act.sa_handler = (i == SIGCHLD || i == SIGKILL || i == SIGSTOP || i == SIGCONT
                              || i == SIGSEGV || i == SIGBUS || i == SIGILL || i == SIGFPE)
                             ? SIG_DFL : SIG_IGN;
            sigaction(i, &act, NULL);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        ngx_setproctitle("exec keeper");
        dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        /* Nothing of nginx's (sockets, files) goes to the command. */
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
            for (i = 3; i < 65536; i++) {
                close(i);
            }
        }
        keeper = getpid();

        cmd = syscall(SYS_clone, (unsigned long) SIGCHLD, 0UL, 0UL, 0UL, 0UL);
        if (cmd == 0) {
            act.sa_handler = SIG_DFL;
            for (i = 1; i < NSIG; i++) {
                sigaction(i, &act, NULL);
            }
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != keeper) {
                _exit(127);
            }
            for (i = 0; i < nr; i++) {
                if (r[i].path == NULL) {
                    dup2(r[i].to, r[i].fd);
                    continue;
                }
                int flags = r[i].mode == 0 ? O_RDONLY
                          : r[i].mode == 1 ? O_WRONLY | O_CREAT | O_TRUNC
                          : O_WRONLY | O_CREAT | O_APPEND;
                int f = open(r[i].path, flags, 0644);
                if (f == -1) {
                    say("exec: cannot open ", r[i].path);
                    continue;
                }
                if (f != r[i].fd) {
                    dup2(f, r[i].fd);
                    close(f);
                }
            }
            execve(path, argv, envp);
            say("exec: execve failed: ", path);
            _exit(127);
        }
        if (cmd == -1) {
            say("exec: clone failed", NULL);
            _exit(127);
        }
        /* The command's output is its own: the keeper's copies go, so that the pipe ends
         * when the command (and what it started) ends. */
        close(0);
        close(1);
        close(2);
        while (waitpid((pid_t) cmd, &status, 0) == -1) {
            if (errno != EINTR) {
                _exit(127);
            }
        }
        if (WIFSIGNALED(status)) {
            struct rlimit no_core = { 0, 0 };
            setrlimit(RLIMIT_CORE, &no_core);
            act.sa_handler = SIG_DFL;
            sigaction(WTERMSIG(status), &act, NULL);
            kill(keeper, WTERMSIG(status));
        }
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
    }

    e = errno;
    close(p[1]);
    close(devnull);
    if (pid == -1) {
        close(p[0]);
        return -e;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *pidfd = fd;
    *out = p[0];
    return (int) pid;
}

/* Whether the child of `pidfd` ended (1: `*code` its exit code, or -1 and `*sig` the
 * signal that killed it), not yet (0), or -errno. */
int ngx_rtmp_rs_reap(int pidfd, int *code, int *sig)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED | WNOHANG | __WALL) == -1) {
        return -errno;
    }
    if (si.si_pid == 0) {
        return 0;
    }
    if (si.si_code == CLD_EXITED) {
        *code = si.si_status;
        *sig = 0;
    } else {
        *code = -1;
        *sig = si.si_status;
    }
    return 1;
}

/* Sends `sig` to the child's process group (the child itself if it has none). */
int ngx_rtmp_rs_signal(int pid, int sig)
{
    if (kill(-pid, sig) == 0) {
        return 0;
    }
    return kill(pid, sig) == 0 ? 0 : -errno;
}

/* Waits up to `ms` for the child of `pidfd` to end (the worker exits). */
void ngx_rtmp_rs_wait(int pidfd, int ms)
{
    struct pollfd p;

    p.fd = pidfd;
    p.events = POLLIN;
    p.revents = 0;
    (void) poll(&p, 1, ms);
}
