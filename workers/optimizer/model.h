/* model.h - a generic model given as MPS (fixed or free) or CPLEX LP text, solved like a
 * scenario; its result holds every column's value by name. */
#ifndef OP_MODEL_H
#define OP_MODEL_H

#include <stddef.h>

#include "optimizer/result.h"
#include "optimizer/solve.h"

#define OP_MODEL_TEXT_MAX ((size_t)16 << 20) /* bytes of model text */
#define OP_MODEL_COLS_MAX 1000000            /* columns reported back */

enum op_model_format {
    OP_MODEL_MPS,      /* fixed MPS; text GLPK's fixed reader refuses is tried as free MPS */
    OP_MODEL_FREE_MPS, /* free MPS */
    OP_MODEL_LP        /* CPLEX LP */
};

/* "mps", "free_mps" or "lp"; 0 or -SY_EINVAL. */
int op_model_format_from_name(const char *name, enum op_model_format *f);

/* Writes text to a private temporary file (GLPK's readers take a file name), reads and solves
 * it. Unreadable text is status OP_ERROR with GLPK's message (line number included) in
 * r->reason. Returns 0, or -SY_ETOOBIG / -SY_EIO / -SY_ENOMEM with r->status OP_ERROR. The
 * caller clears r. Runs GLPK in the calling thread: see plan.h. */
int op_model_solve(enum op_model_format fmt, const char *text, size_t len,
                   const struct op_options *opt, const struct op_ctl *ctl, struct op_result *r);

#endif
