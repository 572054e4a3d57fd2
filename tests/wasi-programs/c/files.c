/* Lists each directory argument (sorted, without "." and "..", with each entry's kind and
 * size from stat) and prints each file argument's contents through stdio, then reads
 * standard input line by line and writes it upper-cased. Exits 0, or 2 when an argument
 * could not be read. Built for wasm32-wasi and natively by sim/tests/wasi_programs.rs. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) {
        printf("%s: cannot open directory (errno %s)\n", path, errno == ENOENT ? "ENOENT" : "other");
        return 2;
    }
    char *names[256];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 256) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        names[count++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof names[0], by_name);
    printf("%s: %d entries\n", path, count);
    for (int i = 0; i < count; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        struct stat st;
        if (lstat(full, &st) != 0) {
            printf("  %s: lstat failed\n", names[i]);
        } else if (S_ISDIR(st.st_mode)) {
            printf("  %s/\n", names[i]);
        } else if (S_ISLNK(st.st_mode)) {
            printf("  %s (symlink)\n", names[i]);
        } else {
            printf("  %s %lld bytes\n", names[i], (long long)st.st_size);
        }
        free(names[i]);
    }
    return 0;
}

static int cat(const char *path) {
    FILE *file = fopen(path, "r");
    if (!file) {
        printf("%s: cannot open (errno %s)\n", path, errno == ENOENT ? "ENOENT" : "other");
        return 2;
    }
    char buffer[512];
    size_t total = 0, n;
    printf("--- %s\n", path);
    while ((n = fread(buffer, 1, sizeof buffer, file)) > 0) {
        /* Print only the text files' bytes, count the rest. */
        for (size_t i = 0; i < n; i++)
            if (total + i < 200)
                putchar(isprint((unsigned char)buffer[i]) || buffer[i] == '\n' ? buffer[i] : '.');
        total += n;
    }
    fclose(file);
    printf("\n--- %zu bytes\n", total);
    return 0;
}

int main(int argc, char **argv) {
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (list(argv[i])) status = 2;
        } else if (cat(argv[i])) {
            status = 2;
        }
    }
    char line[256];
    int lines = 0;
    while (fgets(line, sizeof line, stdin)) {
        for (char *c = line; *c; c++) *c = (char)toupper((unsigned char)*c);
        fputs(line, stdout);
        lines++;
    }
    printf("%d lines from stdin\n", lines);
    return status;
}
