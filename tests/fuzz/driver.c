/*
 * tests/fuzz/driver.c - a main for the fuzz harnesses without libFuzzer: runs
 * every file named on the command line (directories are walked, one level)
 * through LLVMFuzzerTestOneInput once. The `unit` suite runs each harness over
 * its committed corpus this way, so the harness code is always built and its
 * regression inputs replayed (under the sanitizers and valgrind too, with the
 * corresponding setups).
 */
#include <dirent.h>
#include <sys/stat.h>
#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "driver: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, fp);
        if (len < cap) break;
        unsigned char *q = realloc(buf, cap *= 2);
        if (!q) free(buf);
        buf = q;
    }
    fclose(fp);
    if (!buf) return 1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int run_path(const char *path, int *count)
{
    struct stat sb;
    if (stat(path, &sb)) {
        fprintf(stderr, "driver: %s: no such file\n", path);
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) return (*count)++, run_file(path);
    DIR *d = opendir(path);
    if (!d) return 1;
    int bad = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        (*count)++;
        bad |= run_file(sub);
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) bad |= run_path(argv[i], &count);
    printf("driver: %d inputs, %s\n", count, bad ? "errors" : "all passed");
    return bad || count == 0;
}
