/* model.c - MPS / CPLEX LP text through a temporary file into GLPK, solved by solve.c, the
 * columns' values read back by name. */
#include "optimizer/model.h"

#include "optimizer/solve_int.h"
#include "sy/err.h"

#include <glpk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int op_model_format_from_name(const char *name, enum op_model_format *f)
{
    static const char *const names[] = {"mps", "free_mps", "lp"};

    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *f = (enum op_model_format)i;
            return 0;
        }
    return -SY_EINVAL;
}

static int write_temp(const char *text, size_t len, char *path, size_t pathlen)
{
    const char *dir = getenv("TMPDIR");
    int rc = 0;

    snprintf(path, pathlen, "%s/sy-optimizer-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        path[0] = '\0';
        return -SY_EIO;
    }
    for (size_t off = 0; off < len && rc == 0;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n <= 0)
            rc = -SY_EIO;
        else
            off += (size_t)n;
    }
    if (close(fd) != 0)
        rc = -SY_EIO;
    return rc;
}

/* GLPK's message without the temporary file's name. */
static void read_failed(struct op_result *r, const char *path)
{
    const char *line = op_glpk_last_line(), *at = strstr(line, path);

    if (at)
        line = at + strlen(path) + (at[strlen(path)] == ':');
    snprintf(r->reason, sizeof r->reason, "model text refused: line %s", line);
    r->status = OP_ERROR;
}

static int read_model(glp_prob *P, enum op_model_format fmt, const char *path)
{
    if (fmt == OP_MODEL_LP)
        return glp_read_lp(P, NULL, path);
    if (fmt == OP_MODEL_MPS && glp_read_mps(P, GLP_MPS_DECK, NULL, path) == 0)
        return 0;
    /* Tabs or names past column 12 make the fixed reader fail where the free one succeeds. */
    glp_erase_prob(P);
    return glp_read_mps(P, GLP_MPS_FILE, NULL, path);
}

static int extract(glp_prob *P, bool mip, struct op_result *r)
{
    int n = glp_get_num_cols(P);

    if (n > OP_MODEL_COLS_MAX)
        return -SY_ETOOBIG;
    r->var_names = calloc((size_t)n + 1, sizeof *r->var_names);
    r->var_values = calloc((size_t)n + 1, sizeof *r->var_values);
    if (!r->var_names || !r->var_values)
        return -SY_ENOMEM;
    for (int j = 1; j <= n; j++) {
        const char *name = glp_get_col_name(P, j);
        char made[24];
        if (!name) {
            snprintf(made, sizeof made, "x%d", j);
            name = made;
        }
        if (!(r->var_names[r->nvars] = strdup(name)))
            return -SY_ENOMEM;
        r->var_values[r->nvars++] = op_solve_col(P, mip, j);
    }
    return 0;
}

int op_model_solve(enum op_model_format fmt, const char *text, size_t len,
                   const struct op_options *opt, const struct op_ctl *ctl, struct op_result *r)
{
    char path[4096] = "";
    glp_prob *P = NULL;
    bool mip;
    int rc = 0;

    r->status = OP_ERROR;
    if (len > OP_MODEL_TEXT_MAX) {
        rc = -SY_ETOOBIG;
        goto out;
    }
    if ((rc = write_temp(text, len, path, sizeof path)) < 0)
        goto out;
    op_glpk_capture();
    P = glp_create_prob();
    if (read_model(P, fmt, path) != 0) {
        read_failed(r, path);
        goto out;
    }
    op_solve_prob(P, opt, ctl, r, &mip);
    if (r->has_plan)
        rc = extract(P, mip, r);
out:
    if (rc < 0) {
        r->status = OP_ERROR;
        r->has_plan = false;
        snprintf(r->reason, sizeof r->reason, "model: %s%s", sy_strerror(rc),
                 rc == -SY_ETOOBIG ? " (text or columns past the limit)" : "");
    }
    if (P)
        glp_delete_prob(P);
    if (path[0])
        unlink(path);
    return rc;
}
