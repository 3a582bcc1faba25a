/*
 * The launcher of synco's release binaries: a small static program with a payload appended.
 *
 * The payload (written by build/pack.py, layout in build/README.md) holds a dynamically linked
 * program (the PyInstaller one-file binary), the loader and C library it runs with, and the
 * other system libraries it needs. At start the launcher
 *   1. picks a temporary folder where programs may run: $TMPDIR, /tmp, /var/tmp, /dev/shm,
 *      $XDG_RUNTIME_DIR, $HOME, in this order, skipping any that is mounted noexec, full or not
 *      writable;
 *   2. unpacks the payload into a new folder there (libraries are xz-compressed, the program is
 *      stored as it is, being compressed already), locked while it is in use; folders of
 *      earlier runs that nothing holds any more are removed first;
 *   3. writes that folder into the program's interpreter path and RPATH, which the build left as
 *      long placeholders, so the program runs with the unpacked loader and libraries only;
 *   4. runs the program with the same arguments; if the kernel refuses to run it there, it
 *      tries the next folder;
 *   5. forwards stop signals to it, waits, removes the folder and exits as the program did.
 * The program gets that folder as $TMPDIR, so what it unpacks or writes there goes with it.
 *
 * It needs only the kernel: no C library of the host, just /proc to read itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAGIC "SYNCOSFX"
#define FORMAT_VERSION 1
#define TRAILER_SIZE 24 /* u64 payload offset, u32 entry count, u32 version, magic[8] */
#define ENTRY_SIZE 28   /* u8 kind, codec, role, 0; u32 mode, name length; u64 size, stored size */
#define MAX_ENTRIES 64
#define MAX_ROOTS 8
#define FOLDER_TEMPLATE "synco-run-XXXXXX"

/* exit codes shared with the Python programs (synco_source/errors.py) */
#define EXIT_FAILURE_OTHER 1
#define EXIT_INTEGRITY 6
#define EXIT_LOCAL_IO 9

enum { KIND_FILE = 0, KIND_SYMLINK = 1 };
enum { CODEC_STORED = 0, CODEC_XZ = 1 };
enum { ROLE_LIBRARY = 0, ROLE_PROGRAM = 1, ROLE_INTERPRETER = 2 };

struct entry {
    uint8_t kind, codec, role;
    uint32_t mode;
    uint64_t size, stored, data; /* data: offset of the stored bytes in our own file */
    char name[256];
};

static const char *prog = "synco";
static int self_fd = -1;
static struct entry entries[MAX_ENTRIES];
static unsigned n_entries;
static uint64_t unpacked_size;

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t caught;

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int read_at(void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(self_fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the payload's table of contents */

static void read_payload(void)
{
    self_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self_fd < 0)
        die(EXIT_FAILURE_OTHER, "cannot read /proc/self/exe (%s): mount /proc, the program "
            "unpacks itself from there", strerror(errno));
    struct stat st;
    unsigned char t[TRAILER_SIZE];
    if (fstat(self_fd, &st) < 0 || st.st_size < TRAILER_SIZE
        || read_at(t, sizeof t, (uint64_t)st.st_size - TRAILER_SIZE) < 0
        || memcmp(t + 16, MAGIC, 8) != 0)
        die(EXIT_INTEGRITY, "this file is damaged (no payload at its end): download it again");
    uint64_t off = le64(t);
    n_entries = le32(t + 8);
    if (le32(t + 12) != FORMAT_VERSION)
        die(EXIT_INTEGRITY, "this file has payload format %u, this launcher reads %u: download "
            "it again", le32(t + 12), FORMAT_VERSION);
    if (n_entries == 0 || n_entries > MAX_ENTRIES)
        die(EXIT_INTEGRITY, "this file is damaged (%u entries): download it again", n_entries);
    uint64_t end = (uint64_t)st.st_size - TRAILER_SIZE;
    unsigned programs = 0, interpreters = 0;
    for (unsigned i = 0; i < n_entries; i++) {
        struct entry *e = &entries[i];
        unsigned char h[ENTRY_SIZE];
        if (off + ENTRY_SIZE > end || read_at(h, sizeof h, off) < 0)
            die(EXIT_INTEGRITY, "this file is damaged (entry %u): download it again", i);
        e->kind = h[0];
        e->codec = h[1];
        e->role = h[2];
        e->mode = le32(h + 4) & 07777;
        uint32_t name_len = le32(h + 8);
        e->size = le64(h + 12);
        e->stored = le64(h + 20);
        off += ENTRY_SIZE;
        if (name_len == 0 || name_len >= sizeof e->name || off + name_len > end
            || read_at(e->name, name_len, off) < 0)
            die(EXIT_INTEGRITY, "this file is damaged (entry %u): download it again", i);
        e->name[name_len] = 0;
        off += name_len;
        e->data = off;
        if (e->stored > end - off)
            die(EXIT_INTEGRITY, "this file is damaged (entry %u): download it again", i);
        off += e->stored;
        if (strchr(e->name, '/') || !strcmp(e->name, ".") || !strcmp(e->name, "..")
            || e->kind > KIND_SYMLINK || e->codec > CODEC_XZ || e->role > ROLE_INTERPRETER)
            die(EXIT_INTEGRITY, "this file is damaged (entry %u): download it again", i);
        if (e->role == ROLE_PROGRAM)
            prog = e->name;
        unpacked_size += e->size;
        if (e->role == ROLE_PROGRAM)
            programs++;
        if (e->role == ROLE_INTERPRETER)
            interpreters++;
    }
    if (programs != 1 || interpreters != 1)
        die(EXIT_INTEGRITY, "this file is damaged (%u programs, %u interpreters): download it "
            "again", programs, interpreters);
}

/* room for our folder: the payload unpacked, then the PyInstaller stage's libraries (about 2.5
   times its program), with some to spare */
static uint64_t space_needed(void)
{
    return unpacked_size * 4 + (4 << 20);
}

static const struct entry *entry_with(int role)
{
    for (unsigned i = 0; i < n_entries; i++)
        if (entries[i].role == role)
            return &entries[i];
    die(EXIT_INTEGRITY, "this file is damaged (no entry of role %d): download it again", role);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* unpacking: 0, DAMAGED for a payload that does not decode, or -1 with errno set (disk full,
   I/O error: another folder may do) */
#define DAMAGED (-2)

static int copy_stored(const struct entry *e, int out)
{
    static char buf[1 << 20];
    uint64_t left = e->stored, off = e->data;
    while (left) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        if (read_at(buf, n, off) < 0)
            return DAMAGED;
        if (write_all(out, buf, n) < 0)
            return -1;
        off += n;
        left -= n;
    }
    return e->stored == e->size ? 0 : DAMAGED;
}

static int copy_xz(const struct entry *e, int out)
{
    static unsigned char in[1 << 16], buf[1 << 18];
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t left = e->stored, off = e->data, total = 0;
    int rc = DAMAGED;
    lzma_ret r = LZMA_OK;
    while (r == LZMA_OK) {
        if (s.avail_in == 0 && left) {
            size_t n = left < sizeof in ? (size_t)left : sizeof in;
            if (read_at(in, n, off) < 0)
                break;
            s.next_in = in;
            s.avail_in = n;
            off += n;
            left -= n;
        }
        s.next_out = buf;
        s.avail_out = sizeof buf;
        r = lzma_code(&s, left || s.avail_in ? LZMA_RUN : LZMA_FINISH);
        size_t produced = sizeof buf - s.avail_out;
        if (produced && write_all(out, buf, produced) < 0) {
            lzma_end(&s);
            return -1;
        }
        total += produced;
    }
    if (r == LZMA_STREAM_END && total == e->size && left == 0 && s.avail_in == 0)
        rc = 0;
    else if (r == LZMA_MEM_ERROR) {
        rc = -1;
        errno = ENOMEM;
    }
    lzma_end(&s);
    return rc;
}

static int unpack_entry(int dir, const struct entry *e)
{
    if (e->kind == KIND_SYMLINK) {
        char target[256];
        if (e->codec != CODEC_STORED || e->stored >= sizeof target || e->stored != e->size
            || read_at(target, e->stored, e->data) < 0 || memchr(target, '/', e->stored))
            return DAMAGED;
        target[e->stored] = 0;
        return symlinkat(target, dir, e->name);
    }
    int out = openat(dir, e->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return -1;
    int rc = e->codec == CODEC_XZ ? copy_xz(e, out) : copy_stored(e, out);
    if (rc == 0 && fchmod(out, e->mode) < 0)
        rc = -1;
    int saved = errno;
    if (close(out) < 0 && rc == 0) /* a write error can show only here (NFS, quota) */
        return -1;
    errno = saved;
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* the program's interpreter and RPATH: overwrite the placeholders in place */

static int vaddr_to_offset(const Elf64_Phdr *ph, unsigned n, uint64_t vaddr, uint64_t *off)
{
    for (unsigned i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr
            && vaddr < ph[i].p_vaddr + ph[i].p_filesz) {
            *off = vaddr - ph[i].p_vaddr + ph[i].p_offset;
            return 0;
        }
    return -1;
}

/* overwrite the NUL-terminated string at off (of at most cap bytes with its NUL) with value */
static int put_string(int fd, uint64_t off, size_t cap, const char *value)
{
    char buf[4096] = {0};
    size_t len = strlen(value);
    if (cap > sizeof buf || len + 1 > cap)
        return -1;
    memcpy(buf, value, len);
    return pwrite(fd, buf, cap, (off_t)off) == (ssize_t)cap ? 0 : -1;
}

static const char *patch_program(int dir, const char *name, const char *interp,
                                 const char *rpath)
{
    int fd = openat(dir, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return "cannot open the program";
    Elf64_Ehdr eh;
    Elf64_Phdr ph[32];
    const char *err = NULL;
    if (pread(fd, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG)
        || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)
        || eh.e_phnum > 32
        || pread(fd, ph, eh.e_phnum * sizeof *ph, (off_t)eh.e_phoff)
               != (ssize_t)(eh.e_phnum * sizeof *ph)) {
        err = "the program is not a 64-bit ELF file";
        goto out;
    }
    int interp_done = 0, rpath_done = 0;
    for (unsigned i = 0; i < eh.e_phnum && !err; i++) {
        if (ph[i].p_type == PT_INTERP) {
            if (put_string(fd, ph[i].p_offset, ph[i].p_filesz, interp) < 0)
                err = "the folder's path is too long for the program's interpreter field";
            interp_done = 1;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            size_t n = ph[i].p_filesz / sizeof(Elf64_Dyn);
            Elf64_Dyn *dyn = malloc(ph[i].p_filesz);
            uint64_t strtab = 0, str_off = 0;
            if (!dyn || pread(fd, dyn, ph[i].p_filesz, (off_t)ph[i].p_offset)
                            != (ssize_t)ph[i].p_filesz) {
                free(dyn);
                err = "cannot read the program's dynamic section";
                break;
            }
            for (size_t k = 0; k < n && dyn[k].d_tag != DT_NULL; k++)
                if (dyn[k].d_tag == DT_STRTAB)
                    strtab = dyn[k].d_un.d_ptr;
            if (vaddr_to_offset(ph, eh.e_phnum, strtab, &str_off) < 0) {
                free(dyn);
                err = "the program has no string table";
                break;
            }
            /* every RPATH and RUNPATH: a RUNPATH left as a placeholder would hide the RPATH */
            for (size_t k = 0; k < n && dyn[k].d_tag != DT_NULL && !err; k++) {
                if (dyn[k].d_tag != DT_RPATH && dyn[k].d_tag != DT_RUNPATH)
                    continue;
                char old[4096];
                uint64_t at = str_off + dyn[k].d_un.d_val;
                ssize_t got = pread(fd, old, sizeof old, (off_t)at);
                if (got <= 0 || !memchr(old, 0, (size_t)got))
                    err = "the program's RPATH cannot be read";
                else if (put_string(fd, at, strlen(old) + 1, rpath) < 0)
                    err = "the folder's path is too long for the program's RPATH";
                rpath_done = 1;
            }
            free(dyn);
        }
    }
    if (!err && !(interp_done && rpath_done))
        err = "the program has no interpreter or RPATH placeholder";
out:
    close(fd);
    return err;
}

/* ---------------------------------------------------------------------------------------- */
/* the folder */

/* remove name under parent, whatever the program left in it (read-only folders included);
   1 when it is gone */
static int remove_tree(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 1;
    if (errno != EISDIR && errno != EPERM && errno != EACCES)
        return 0;
    fchmodat(parent, name, 0700, 0); /* not a symbolic link: unlinkat removed those */
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d) {
        /* again while a pass removes something: removing while reading may skip entries */
        for (int progress = 1; progress;) {
            progress = 0;
            rewinddir(d);
            struct dirent *de;
            while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                    progress |= remove_tree(fd, de->d_name);
        }
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    return unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

static void remove_folder(const char *path)
{
    remove_tree(AT_FDCWD, path);
}

/* Folders of earlier runs that nothing holds any more (the launcher killed with SIGKILL, a
   machine that lost power): each run keeps a lock on its folder, which the program inherits. */
static void sweep(const char *root)
{
    int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dir >= 0 ? fdopendir(dir) : NULL;
    if (!d) {
        if (dir >= 0)
            close(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, FOLDER_TEMPLATE, strlen(FOLDER_TEMPLATE) - 6)
            || strlen(de->d_name) != strlen(FOLDER_TEMPLATE))
            continue;
        struct stat st;
        int fd = openat(dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* a minute old at least: a run that has just made its folder locks it right after */
        if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && time(NULL) - st.st_mtime > 60
            && flock(fd, LOCK_EX | LOCK_NB) == 0)
            remove_tree(dir, de->d_name);
        close(fd);
    }
    closedir(d);
}

/* ---------------------------------------------------------------------------------------- */
/* signals: before the program runs, remember one; then forward what was sent to us alone.
   Signals ignored when we started (nohup, a script's trap "") stay ignored, for us and for it. */

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};
static const char *const forwarded_names[] = {"HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "ALRM"};
#define N_FORWARDED (sizeof forwarded / sizeof *forwarded)
static int inherited_ignore[N_FORWARDED];
static int xfsz_ignored;

static void on_signal(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    int saved = errno;
    if (child_pid > 0) {
        /* a signal from the terminal (Ctrl-C, hang-up) reaches the whole process group, the
           program too: forward only what was sent to this process */
        if (info->si_code != SI_KERNEL)
            kill(child_pid, sig);
    } else {
        caught = sig;
    }
    errno = saved;
}

static void set_signals(int install)
{
    struct sigaction sa;
    for (size_t i = 0; i < N_FORWARDED; i++) {
        if (inherited_ignore[i])
            continue;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        if (install) {
            sa.sa_sigaction = on_signal;
            sa.sa_flags = SA_SIGINFO | SA_RESTART;
        } else {
            sa.sa_handler = SIG_DFL;
        }
        sigaction(forwarded[i], &sa, NULL);
    }
}

static void init_signals(void)
{
    for (size_t i = 0; i < N_FORWARDED; i++) {
        struct sigaction old;
        inherited_ignore[i] = sigaction(forwarded[i], NULL, &old) == 0
                              && old.sa_handler == SIG_IGN;
    }
    set_signals(1);
    signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would make waitpid fail */
    /* a file size limit: a failed write, so the next folder is tried */
    xfsz_ignored = signal(SIGXFSZ, SIG_IGN) == SIG_IGN;
}

static void block_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < N_FORWARDED; i++)
        sigaddset(&set, forwarded[i]);
    sigprocmask(how, &set, NULL);
}

/* exit as the program did, or die of the signal that stopped it */
static void exit_like(int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* the program has written its core dump, if any */
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        kill(getpid(), sig);
        exit(128 + sig);
    }
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE_OTHER);
}

static void stop_if_caught(const char *folder)
{
    if (caught) {
        if (folder)
            remove_folder(folder);
        exit_like(caught); /* a wait status of "killed by signal n" is n */
    }
}

/* ---------------------------------------------------------------------------------------- */

struct attempt {
    char root[4096];
    char why[160];
};

static void add_root(struct attempt *roots, unsigned *n, const char *path)
{
    if (!path || !*path || *n >= MAX_ROOTS || strlen(path) >= sizeof roots->root - 32)
        return;
    for (unsigned i = 0; i < *n; i++)
        if (!strcmp(roots[i].root, path))
            return;
    strcpy(roots[(*n)++].root, path);
}

/* unpack into a new folder under root and start the program there: its pid, or 0 with the
   reason in why (and nothing left behind) */
static pid_t try_root(struct attempt *a, char **argv, char *folder, size_t folder_size)
{
    /* the folder goes into the program's RPATH, where ':' separates and '$' substitutes */
    if (a->root[0] != '/' || strpbrk(a->root, ":$")) {
        snprintf(a->why, sizeof a->why, "not an absolute path without ':' and '$'");
        return 0;
    }
    struct statvfs vfs;
    if (statvfs(a->root, &vfs) < 0) {
        snprintf(a->why, sizeof a->why, "%s", strerror(errno));
        return 0;
    }
    if (vfs.f_flag & ST_NOEXEC) {
        snprintf(a->why, sizeof a->why, "mounted noexec");
        return 0;
    }
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize < space_needed()) {
        snprintf(a->why, sizeof a->why, "less than %llu MB free",
                 (unsigned long long)(space_needed() >> 20));
        return 0;
    }
    snprintf(folder, folder_size, "%s/%s", a->root, FOLDER_TEMPLATE);
    if (!mkdtemp(folder)) {
        snprintf(a->why, sizeof a->why, "%s", strerror(errno));
        return 0;
    }
    /* the lock that keeps sweep() of other runs away; not close-on-exec: the program and its
       PyInstaller stage hold it as long as they run */
    int dir = open(folder, O_RDONLY | O_DIRECTORY);
    if (dir < 0 || flock(dir, LOCK_EX) < 0) {
        snprintf(a->why, sizeof a->why, "%s", strerror(errno));
        if (dir >= 0)
            close(dir);
        remove_folder(folder);
        return 0;
    }
    for (unsigned i = 0; i < n_entries; i++) {
        stop_if_caught(folder);
        int rc = unpack_entry(dir, &entries[i]);
        if (rc < 0) {
            int err_no = errno;
            close(dir);
            remove_folder(folder);
            if (rc == DAMAGED)
                die(EXIT_INTEGRITY, "this file is damaged (%s): download it again",
                    entries[i].name);
            snprintf(a->why, sizeof a->why, "%s", strerror(err_no));
            return 0;
        }
    }
    char interp[4096 + 300];
    snprintf(interp, sizeof interp, "%s/%s", folder, entry_with(ROLE_INTERPRETER)->name);
    const char *err = patch_program(dir, prog, interp, folder);
    if (err) {
        close(dir);
        remove_folder(folder);
        if (strstr(err, "too long")) {
            snprintf(a->why, sizeof a->why, "%s", err);
            return 0;
        }
        die(EXIT_INTEGRITY, "this file is damaged (%s): download it again", err);
    }
    stop_if_caught(folder);

    char path[4096 + 300];
    snprintf(path, sizeof path, "%s/%s", folder, prog);
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        int err_no = errno;
        close(dir);
        remove_folder(folder);
        die(EXIT_FAILURE_OTHER, "cannot start the program (pipe: %s)", strerror(err_no));
    }
    block_signals(SIG_BLOCK);
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        set_signals(0);
        if (!xfsz_ignored)
            signal(SIGXFSZ, SIG_DFL);
        block_signals(SIG_UNBLOCK);
        /* the PyInstaller stage unpacks into $TMPDIR too, and the program keeps its temporary
           files there: our folder, where programs may run and which is removed at the end */
        setenv("TMPDIR", folder, 1);
        /* the PyInstaller stage handles every signal, so the program cannot see which ones were
           ignored (nohup): name them (synco_source/cli.py, adopt_ignored_signals) */
        char names[64] = "";
        for (size_t i = 0; i < N_FORWARDED; i++)
            if (inherited_ignore[i]) {
                if (*names)
                    strcat(names, ",");
                strcat(names, forwarded_names[i]);
            }
        if (*names)
            setenv("SYNCO_IGNORED_SIGNALS", names, 1);
        else
            unsetenv("SYNCO_IGNORED_SIGNALS");
        execv(path, argv);
        int err_no = errno;
        (void)!write(report[1], &err_no, sizeof err_no);
        _exit(127);
    }
    if (pid < 0) {
        int err_no = errno;
        close(dir);
        remove_folder(folder);
        die(EXIT_FAILURE_OTHER, "cannot start the program (fork: %s)", strerror(err_no));
    }
    close(dir); /* the program holds the lock now */
    child_pid = pid;
    if (caught) /* sent after the last check, before the fork */
        kill(pid, caught);
    block_signals(SIG_UNBLOCK);
    close(report[1]);
    int err_no;
    ssize_t n;
    while ((n = read(report[0], &err_no, sizeof err_no)) < 0 && errno == EINTR)
        ;
    close(report[0]);
    if (n == sizeof err_no) { /* exec failed: nothing ran */
        child_pid = 0;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        remove_folder(folder);
        snprintf(a->why, sizeof a->why, "cannot run programs there (%s)", strerror(err_no));
        return 0;
    }
    return pid;
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *slash = argv[0] ? strrchr(argv[0], '/') : NULL;
    if (argv[0])
        prog = slash ? slash + 1 : argv[0];
    init_signals();
    read_payload();

    struct attempt roots[MAX_ROOTS];
    unsigned n_roots = 0;
    memset(roots, 0, sizeof roots);
    add_root(roots, &n_roots, getenv("TMPDIR"));
    add_root(roots, &n_roots, "/tmp");
    add_root(roots, &n_roots, "/var/tmp");
    add_root(roots, &n_roots, "/dev/shm");
    add_root(roots, &n_roots, getenv("XDG_RUNTIME_DIR"));
    add_root(roots, &n_roots, getenv("HOME"));

    static char folder[4096 + 32];
    pid_t pid = 0;
    for (unsigned i = 0; i < n_roots && !pid; i++) {
        stop_if_caught(NULL);
        sweep(roots[i].root);
        pid = try_root(&roots[i], argv, folder, sizeof folder);
    }
    if (!pid) {
        char tried[2048] = "";
        for (unsigned i = 0; i < n_roots; i++) {
            size_t used = strlen(tried);
            snprintf(tried + used, sizeof tried - used, "%s%.160s: %s", i ? "; " : "",
                     roots[i].root, roots[i].why);
        }
        die(EXIT_LOCAL_IO, "found no temporary folder to unpack and run in (%s): set TMPDIR to "
            "a writable folder, not mounted noexec, with %llu MB free", tried,
            (unsigned long long)(space_needed() >> 20));
    }

    /* wait without reaping first, so the handler never signals a pid that is gone */
    siginfo_t info;
    int status = EXIT_FAILURE_OTHER << 8;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    child_pid = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    remove_folder(folder);
    exit_like(status);
    return EXIT_FAILURE_OTHER;
}
