/* Tries every way out of a preopened directory with raw WASI preview-1 calls (no
 * wasi-libc path resolution in between) and prints one line per attempt: the attempt and
 * the errno the runtime answered ("ok" when it succeeded). Runs with the fixture of
 * sim/tests/wasi_programs.rs preopened as "/", which compares the output with
 * escapes.expected. wasm32-wasi only. */
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static const char *name(__wasi_errno_t e) {
    switch (e) {
#define E(x) case __WASI_ERRNO_##x: return #x;
    E(SUCCESS) E(ACCES) E(BADF) E(EXIST) E(INVAL) E(IO) E(ISDIR) E(LOOP) E(NAMETOOLONG)
    E(NOENT) E(NOSYS) E(NOTDIR) E(NOTEMPTY) E(NOTSUP) E(PERM) E(ROFS) E(XDEV)
    E(NOTCAPABLE) E(FAULT) E(MLINK) E(NOSPC) E(NOMEM)
#undef E
    }
    static char unknown[32];
    snprintf(unknown, sizeof unknown, "errno %u", (unsigned)e);
    return unknown;
}

static __wasi_fd_t root;
static __wasi_rights_t rights_base, rights_inheriting;

static void report(const char *what, __wasi_errno_t e) {
    printf("%-44s %s\n", what, e == __WASI_ERRNO_SUCCESS ? "ok" : name(e));
}

/* path_open from `dir`, closing what it opened. */
static void try_open(const char *what, __wasi_fd_t dir, __wasi_lookupflags_t follow,
                     const char *path, __wasi_oflags_t oflags) {
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(dir, follow, path, oflags, rights_base,
                                        rights_inheriting, 0, &fd);
    if (e == 0) (void)__wasi_fd_close(fd);
    report(what, e);
}

int main(void) {
    /* The preopen named "/". */
    root = (__wasi_fd_t)-1;
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t prestat;
        if (__wasi_fd_prestat_get(fd, &prestat) != 0) break;
        char dir_name[64] = {0};
        if (prestat.u.dir.pr_name_len < sizeof dir_name &&
            __wasi_fd_prestat_dir_name(fd, (uint8_t *)dir_name, prestat.u.dir.pr_name_len) == 0 &&
            strcmp(dir_name, "/") == 0) {
            root = fd;
            break;
        }
    }
    if (root == (__wasi_fd_t)-1) {
        printf("no preopen named /\n");
        return 1;
    }
    __wasi_fdstat_t stat;
    if (__wasi_fd_fdstat_get(root, &stat) != 0) return 1;
    rights_base = stat.fs_rights_base;
    rights_inheriting = stat.fs_rights_inheriting;
    const __wasi_lookupflags_t F = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
    const __wasi_oflags_t D = __WASI_OFLAGS_DIRECTORY, C = __WASI_OFLAGS_CREAT;

    /* Controls: paths that stay inside. */
    try_open("open file", root, F, "file", 0);
    try_open("open dir/../file", root, F, "dir/../file", 0);
    try_open("open ./dir/./inner.txt", root, F, "./dir/./inner.txt", 0);
    try_open("open tofile (symlink to file)", root, F, "tofile", 0);
    try_open("open dir/parent/file (symlink to ..)", root, F, "dir/parent/file", 0);
    try_open("open . as a directory", root, F, ".", D);

    /* Up and out. */
    try_open("open ..", root, F, "..", D);
    try_open("open ../outside.txt", root, F, "../outside.txt", 0);
    try_open("open dir/../../outside.txt", root, F, "dir/../../outside.txt", 0);
    try_open("open dir/../dir/../../outside.txt", root, F, "dir/../dir/../../outside.txt", 0);

    /* Absolute paths. */
    try_open("open /", root, F, "/", D);
    try_open("open /etc/passwd", root, F, "/etc/passwd", 0);
    try_open("open /file", root, F, "/file", 0);

    /* Symbolic links. */
    try_open("open abs (-> /etc)", root, F, "abs", D);
    try_open("open abs/passwd", root, F, "abs/passwd", 0);
    try_open("open absroot/etc/passwd (-> /)", root, F, "absroot/etc/passwd", 0);
    try_open("open up/outside.txt (-> ..)", root, F, "up/outside.txt", 0);
    try_open("open upfile (-> ../outside.txt)", root, F, "upfile", 0);
    try_open("open dir/sneaky (-> ../../outside.txt)", root, F, "dir/sneaky", 0);
    try_open("open loop1 (-> loop2 -> loop1)", root, F, "loop1", 0);
    try_open("open self (-> self)", root, F, "self", 0);
    try_open("open loop1/x", root, F, "loop1/x", 0);
    try_open("open abs without follow", root, 0, "abs", 0);
    try_open("open upfile without follow", root, 0, "upfile", 0);

    /* Through a file. */
    try_open("open file/x", root, F, "file/x", 0);
    try_open("open file/", root, F, "file/", 0);
    try_open("open file/..", root, F, "file/..", 0);
    try_open("open filedir (-> file/x)", root, F, "filedir", 0);
    try_open("open file as a directory", root, F, "file", D);
    try_open("open empty path", root, F, "", 0);

    /* From a directory opened inside. */
    __wasi_fd_t dir;
    report("open dir", __wasi_path_open(root, F, "dir", D, rights_base, rights_inheriting, 0, &dir));
    try_open("dir: open ../file", dir, F, "../file", 0);
    try_open("dir: open ../../outside.txt", dir, F, "../../outside.txt", 0);
    try_open("dir: open ..", dir, F, "..", D);
    try_open("dir: open ../..", dir, F, "../..", D);
    try_open("dir: open /file", dir, F, "/file", 0);

    /* Metadata and links. */
    __wasi_filestat_t filestat;
    report("filestat abs, following", __wasi_path_filestat_get(root, F, "abs", &filestat));
    report("filestat abs, not following", __wasi_path_filestat_get(root, 0, "abs", &filestat));
    report("filestat up, following", __wasi_path_filestat_get(root, F, "up", &filestat));
    report("filestat ../outside.txt", __wasi_path_filestat_get(root, F, "../outside.txt", &filestat));
    char link[128] = {0};
    __wasi_size_t length = 0;
    __wasi_errno_t e = __wasi_path_readlink(root, "abs", (uint8_t *)link, sizeof link - 1, &length);
    link[e == 0 && length < sizeof link ? length : 0] = 0;
    printf("%-44s %s %s\n", "readlink abs", e == 0 ? "ok" : name(e), link);
    memset(link, 0, sizeof link);
    e = __wasi_path_readlink(root, "upfile", (uint8_t *)link, sizeof link - 1, &length);
    link[e == 0 && length < sizeof link ? length : 0] = 0;
    printf("%-44s %s %s\n", "readlink upfile", e == 0 ? "ok" : name(e), link);
    report("readlink ../up", __wasi_path_readlink(root, "../up", (uint8_t *)link, sizeof link, &length));

    /* Creating, removing and moving outside. */
    try_open("create ../created.txt", root, F, "../created.txt", C);
    try_open("create up/created.txt", root, F, "up/created.txt", C);
    try_open("create /created.txt", root, F, "/created.txt", C);
    try_open("create dir/sneaky (-> outside)", root, F, "dir/sneaky", C);
    report("mkdir ../newdir", __wasi_path_create_directory(root, "../newdir"));
    report("mkdir up/newdir", __wasi_path_create_directory(root, "up/newdir"));
    report("mkdir /newdir", __wasi_path_create_directory(root, "/newdir"));
    report("rmdir ..", __wasi_path_remove_directory(root, ".."));
    report("rmdir ../outside-dir", __wasi_path_remove_directory(root, "../outside-dir"));
    report("rmdir up/outside-dir", __wasi_path_remove_directory(root, "up/outside-dir"));
    report("unlink ../outside.txt", __wasi_path_unlink_file(root, "../outside.txt"));
    report("unlink up/outside.txt", __wasi_path_unlink_file(root, "up/outside.txt"));
    report("unlink /file", __wasi_path_unlink_file(root, "/file"));
    report("rename file ../stolen", __wasi_path_rename(root, "file", root, "../stolen"));
    report("rename file up/stolen", __wasi_path_rename(root, "file", root, "up/stolen"));
    report("rename ../outside.txt here", __wasi_path_rename(root, "../outside.txt", root, "here"));
    report("rename up/outside.txt here", __wasi_path_rename(root, "up/outside.txt", root, "here"));
    report("link file ../linked", __wasi_path_link(root, 0, "file", root, "../linked"));
    report("link ../outside.txt linked", __wasi_path_link(root, 0, "../outside.txt", root, "linked"));
    report("link upfile linked, following", __wasi_path_link(root, F, "upfile", root, "linked"));
    report("symlink x ../escaped-link", __wasi_path_symlink("x", root, "../escaped-link"));
    report("symlink x up/escaped-link", __wasi_path_symlink("x", root, "up/escaped-link"));
    report("symlink /etc/passwd abslink", __wasi_path_symlink("/etc/passwd", root, "abslink"));
    try_open("open abslink", root, F, "abslink", 0);
    report("symlink ../outside.txt newlink", __wasi_path_symlink("../outside.txt", root, "newlink"));
    try_open("open newlink", root, F, "newlink", 0);
    try_open("open file still there", root, F, "file", 0);
    return 0;
}
