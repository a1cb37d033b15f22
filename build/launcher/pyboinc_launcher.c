/*
 * The PyMW worker's main program on Linux: a static launcher carrying the frozen runtime.
 *
 * BOINC sends one file per app version and runs it for every task. Unpacking a 25 MB
 * runtime on every start (PyInstaller onefile, staticx) cost 0.5 s per task, so this
 * launcher unpacks its payload once per host and then only checks a marker and execs:
 *
 *   <file>  = this program | payload (uncompressed ustar tar) | trailer (TRAILER_SIZE)
 *   trailer = "PYBOINC-PAYLOAD\1" | offset (8 bytes, little-endian) | size (8) | key (32)
 *   cache   = <dir of the real file>/pyboinc-cache/<key>/   (key: the payload's sha256)
 *   entry   = a PyInstaller onedir tree: PROGRAM, _internal/, and glibc/ (LOADER, libc...)
 *
 * - The first start on a host extracts into "<cache>/.tmp-<pid>", writes the bundled
 *   loader's absolute path into the PT_INTERP of the tree's program (the interpreter's
 *   place is a fixed-size placeholder written at build time, as staticx does), writes the
 *   ".complete" marker and renames the folder into place. rename() is atomic: when several
 *   slots start at once, one wins, the others drop their copy and use the winner's.
 * - Every start then execs "<cache>/<key>/<program>" with the same argv. No process stays
 *   in between (what BOINC kills is the Python process), and nothing is written to /tmp.
 * - Entries whose owner (the launcher file that made them) is gone, which is what BOINC
 *   does when it drops an app version, and leftovers of a killed first start are removed.
 * - When the project dir is not writable, the cache goes into the current dir (the slot).
 *
 * Built with `gcc -static -Os` (pyboinc_build/platforms/linux.py): it needs nothing on the
 * host. Messages go to stderr as one line; exit status 3 is a broken or unusable payload.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAGIC "PYBOINC-PAYLOAD\1"
#define MAGIC_SIZE 16
#define KEY_SIZE 32
#define TRAILER_SIZE (MAGIC_SIZE + 8 + 8 + KEY_SIZE)
#define CACHE_DIR "pyboinc-cache"
#define MARKER ".complete"
#define OWNER ".owner"
#define TMP_PREFIX ".tmp-"
/* Set by the build (pyboinc_build/platforms/linux.py), which lays out the payload. */
#ifndef PROGRAM
#error "build with -DPROGRAM='\"name\"': the runtime's program inside the payload"
#endif
#ifndef LOADER
#error "build with -DLOADER='\"path\"': the bundled dynamic loader inside the payload"
#endif
#define EXIT_BROKEN 3

static const char *program_name = "pymw launcher";

static void die(const char *what, const char *detail) {
    fprintf(stderr, "%s: %s%s%s%s\n", program_name, what, detail ? " (" : "",
            detail ? detail : "", detail ? ")" : "");
    exit(EXIT_BROKEN);
}

/* out = a "/" b, or stop: a cut path would name another file. */
static void join(char out[PATH_MAX], const char *a, const char *b) {
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s", a, b) >= PATH_MAX) die("path too long", a);
}

static uint64_t read_le64(const unsigned char *p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | p[i];
    return value;
}

/* ---------------------------------------------------------------- the payload */

struct payload {
    const unsigned char *data;  /* the tar */
    uint64_t size;
    char key[KEY_SIZE + 1];     /* names the cache entry */
};

static struct payload map_payload(const char *self) {
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < TRAILER_SIZE)
        die("cannot read my own file", self);
    unsigned char *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (file == MAP_FAILED) die("cannot map my own file", strerror(errno));
    const unsigned char *trailer = file + st.st_size - TRAILER_SIZE;
    if (memcmp(trailer, MAGIC, MAGIC_SIZE) != 0) die("no payload in this file", self);
    struct payload p;
    uint64_t offset = read_le64(trailer + MAGIC_SIZE);
    p.size = read_le64(trailer + MAGIC_SIZE + 8);
    if (offset + p.size > (uint64_t)st.st_size - TRAILER_SIZE) die("truncated payload", self);
    p.data = file + offset;
    memcpy(p.key, trailer + MAGIC_SIZE + 16, KEY_SIZE);
    p.key[KEY_SIZE] = '\0';
    for (int i = 0; i < KEY_SIZE; i++)
        if (!strchr("0123456789abcdef", p.key[i])) die("bad payload key", self);
    return p;
}

/* ------------------------------------------------------------ tar extraction */

static uint64_t octal(const char *field, size_t length) {
    uint64_t value = 0;
    for (size_t i = 0; i < length && field[i] >= '0' && field[i] <= '7'; i++)
        value = value * 8 + (uint64_t)(field[i] - '0');
    return value;
}

static void write_all(int fd, const unsigned char *data, uint64_t size, const char *path) {
    while (size > 0) {
        ssize_t written = write(fd, data, size > (1 << 30) ? (1 << 30) : size);
        if (written <= 0) die("cannot write", path);
        data += written;
        size -= (uint64_t)written;
    }
}

/* Extract the ustar members (files, folders, symlinks) the build wrote under `root`.
 * Names come from our own build (sorted, relative, no ".."); they are checked anyway. */
static void extract(const struct payload *p, const char *root) {
    uint64_t at = 0;
    char path[PATH_MAX], name[256 + 2];
    while (at + 512 <= p->size) {
        const char *header = (const char *)p->data + at;
        if (header[0] == '\0') break;  /* the end-of-archive blocks */
        uint64_t size = octal(header + 124, 12);
        mode_t mode = (mode_t)octal(header + 100, 8) & 0777;
        char type = header[156];
        if (header[345] != '\0')
            snprintf(name, sizeof name, "%.155s/%.100s", header + 345, header);
        else
            snprintf(name, sizeof name, "%.100s", header);
        if (name[0] == '/' || strstr(name, "..")) die("unsafe name in the payload", name);
        join(path, root, name);
        at += 512;
        if (at + size > p->size) die("truncated payload member", name);
        if (type == '5') {
            if (mkdir(path, 0755) != 0 && errno != EEXIST) die("cannot create", path);
        } else if (type == '2') {
            char target[101];
            snprintf(target, sizeof target, "%.100s", header + 157);
            if (symlink(target, path) != 0) die("cannot create the symlink", path);
        } else if (type == '0' || type == '\0') {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode | 0600);
            if (fd < 0) die("cannot create", path);
            write_all(fd, p->data + at, size, path);
            if (close(fd) != 0) die("cannot write", path);
        } else {
            die("unsupported member type in the payload", name);
        }
        at += (size + 511) / 512 * 512;
    }
}

/* Write `loader` (NUL-terminated) into the PT_INTERP placeholder of the ELF `path`. */
static void set_interpreter(const char *path, const char *loader) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    ElfW(Ehdr) eh;
    if (fd < 0 || pread(fd, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG))
        die("the payload's program is not an ELF file", path);
    for (int i = 0; i < eh.e_phnum; i++) {
        ElfW(Phdr) ph;
        off_t at = (off_t)eh.e_phoff + (off_t)i * eh.e_phentsize;
        if (pread(fd, &ph, sizeof ph, at) != sizeof ph) break;
        if (ph.p_type != PT_INTERP) continue;
        size_t length = strlen(loader) + 1;
        if (length > ph.p_filesz) die("the cache path is too long for the loader's place", loader);
        if (pwrite(fd, loader, length, (off_t)ph.p_offset) != (ssize_t)length)
            die("cannot patch", path);
        close(fd);
        return;
    }
    die("the payload's program has no PT_INTERP", path);
}

/* ------------------------------------------------------------------ the cache */

static int remove_tree(const char *path) {
    DIR *dir = opendir(path);
    if (dir == NULL) return unlink(path);
    struct dirent *entry;
    char child[PATH_MAX];
    while ((entry = readdir(dir)) != NULL) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        join(child, path, entry->d_name);
        struct stat st;
        int is_dir = entry->d_type == DT_DIR ||
                     (entry->d_type == DT_UNKNOWN && lstat(child, &st) == 0 && S_ISDIR(st.st_mode));
        if (is_dir) remove_tree(child);
        else unlink(child);
    }
    closedir(dir);
    return rmdir(path);
}

static void write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot create", path);
    write_all(fd, (const unsigned char *)text, strlen(text), path);
    if (fsync(fd) != 0 || close(fd) != 0) die("cannot write", path);
}

/* Remove entries whose owner file is gone from `owner_dir`, and folders of first starts
 * that were killed (".tmp-<pid>" of a process that no longer exists). */
static void sweep(const char *cache, const char *owner_dir, const char *keep) {
    DIR *dir = opendir(cache);
    if (dir == NULL) return;
    struct dirent *entry;
    char path[PATH_MAX], owner[NAME_MAX + 1], owner_path[PATH_MAX];
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (name[0] == '.' && strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0) continue;
        if (!strcmp(name, keep)) continue;
        join(path, cache, name);
        if (name[0] == '.') {  /* a first start in progress, or a killed one */
            pid_t pid = (pid_t)atol(name + strlen(TMP_PREFIX));
            if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) remove_tree(path);
            continue;
        }
        join(owner_path, path, OWNER);
        int fd = open(owner_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;  /* not ours, or being renamed right now */
        ssize_t length = read(fd, owner, sizeof owner - 1);
        close(fd);
        if (length <= 0) continue;
        owner[length] = '\0';
        join(owner_path, owner_dir, owner);
        if (access(owner_path, F_OK) != 0 && errno == ENOENT) remove_tree(path);
    }
    closedir(dir);
}

static int complete(const char *entry) {
    char marker[PATH_MAX];
    join(marker, entry, MARKER);
    return access(marker, F_OK) == 0;
}

/* Make `<cache>/<key>` complete; return 0, or -1 when `cache` cannot be used. */
static int install(const struct payload *p, const char *cache, const char *entry,
                   const char *owner) {
    char temp[PATH_MAX], path[PATH_MAX], loader[PATH_MAX];
    if (mkdir(cache, 0755) != 0 && errno != EEXIST) return -1;
    char temp_name[32];
    snprintf(temp_name, sizeof temp_name, "%s%ld", TMP_PREFIX, (long)getpid());
    join(temp, cache, temp_name);
    remove_tree(temp);  /* a leftover of an earlier process with our pid */
    if (mkdir(temp, 0755) != 0) return -1;
    extract(p, temp);
    join(path, temp, PROGRAM);
    join(loader, entry, LOADER);
    set_interpreter(path, loader);
    join(path, temp, OWNER);
    write_text(path, owner);
    join(path, temp, MARKER);
    write_text(path, p->key);
    int dir_fd = open(temp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        syncfs(dir_fd);  /* the files' data is on disk before the entry appears */
        close(dir_fd);
    }
    if (rename(temp, entry) == 0) return 0;
    if (errno == EEXIST || errno == ENOTEMPTY) {
        if (complete(entry)) {  /* another slot was faster: use its entry */
            remove_tree(temp);
            return 0;
        }
        /* A damaged entry (we write the marker before the rename): move it aside, retry. */
        char aside[PATH_MAX];
        join(aside, temp, ".damaged");
        if (rename(entry, aside) == 0 && rename(temp, entry) == 0) {
            join(aside, entry, ".damaged");
            remove_tree(aside);
            return 0;
        }
    }
    remove_tree(temp);
    return complete(entry) ? 0 : -1;  /* another slot may have won meanwhile */
}

int main(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX], dir[PATH_MAX], cache[PATH_MAX], entry[PATH_MAX], target[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) die("cannot find my own file: is /proc mounted?", NULL);
    self[length] = '\0';
    const char *base = strrchr(self, '/') + 1;
    program_name = base;
    snprintf(dir, sizeof dir, "%.*s", (int)(base - self - 1), self);
    if (dir[0] == '\0') strcpy(dir, "/");
    struct payload p = map_payload(self);

    /* The project dir first; the current dir (a BOINC slot) when that is not writable. */
    const char *roots[2] = {dir, "."};
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) != NULL) roots[1] = cwd;
    for (int i = 0; i < 2; i++) {
        join(cache, roots[i], CACHE_DIR);
        join(entry, cache, p.key);
        if (!complete(entry) && (install(&p, cache, entry, base) != 0 || !complete(entry)))
            continue;
        sweep(cache, dir, p.key);
        join(target, entry, PROGRAM);
        execv(target, argv);
        die("cannot start the runtime", strerror(errno));
    }
    die("cannot unpack the runtime: neither the program's dir nor the current dir is "
        "writable", dir);
    return EXIT_BROKEN;
}
