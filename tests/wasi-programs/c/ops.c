/* Changes the current directory's tree with POSIX calls (open/write/close, rename, unlink,
 * mkdir, rmdir, link, ftruncate, lseek, pread/pwrite) and prints what each returned; exits
 * with the status given as the first argument. Built for wasm32-wasi and natively by
 * sim/tests/wasi_programs.rs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *err(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    default: return "other";
    }
}

#define STEP(name, call) do { errno = 0; long r = (long)(call); \
    printf("%-40s %ld %s\n", name, r, r < 0 ? err(errno) : "ok"); } while (0)

int main(int argc, char **argv) {
    int status = argc > 1 ? atoi(argv[1]) : 0;
    STEP("mkdir made", mkdir("made", 0755));
    int fd = open("made/log.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    STEP("open made/log.txt", fd >= 0 ? 0 : -1);
    STEP("write 6", write(fd, "hello\n", 6));
    STEP("write 7", write(fd, "world!\n", 7));
    STEP("pwrite at 0", pwrite(fd, "HE", 2, 0));
    STEP("lseek end", lseek(fd, 0, SEEK_END));
    STEP("close", close(fd));
    fd = open("made/log.txt", O_RDWR);
    char buffer[64] = {0};
    STEP("pread 5 at 6", pread(fd, buffer, 5, 6));
    printf("  read %s\n", buffer);
    STEP("ftruncate 9", ftruncate(fd, 9));
    STEP("close", close(fd));
    fd = open("made/log.txt", O_WRONLY | O_APPEND);
    STEP("append", write(fd, "+tail\n", 6));
    STEP("close", close(fd));
    STEP("rename hello.txt made/hello.txt", rename("hello.txt", "made/hello.txt"));
    STEP("link made/hello.txt hello-again.txt", link("made/hello.txt", "hello-again.txt"));
    STEP("unlink junk.txt", unlink("junk.txt"));
    STEP("rmdir empty", rmdir("empty"));
    STEP("mkdir made/sub", mkdir("made/sub", 0755));
    STEP("rename made/sub data/sub", rename("made/sub", "data/sub"));
    /* What must fail. */
    STEP("unlink junk.txt again", unlink("junk.txt"));
    STEP("rmdir data (not empty)", rmdir("data"));
    STEP("mkdir data (exists)", mkdir("data", 0755));
    STEP("open O_EXCL hello-again.txt", open("hello-again.txt", O_WRONLY | O_CREAT | O_EXCL, 0644));
    STEP("open hello-again.txt/x", open("hello-again.txt/x", O_RDONLY));
    STEP("open O_DIRECTORY hello-again.txt", open("hello-again.txt", O_RDONLY | O_DIRECTORY));
    STEP("unlink data (a directory)", unlink("data"));
    STEP("rename missing x", rename("missing", "x"));
    struct stat st;
    STEP("stat made/log.txt", stat("made/log.txt", &st));
    printf("  size %lld, regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    fflush(stdout);
    return status;
}
