/* main.c - sy-optimizer: supply-chain plans and generic models solved with GLPK. */
#include <stdlib.h>

#include "optimizer/optimizer.h"
#include "sy/worker.h"

int main(int argc, char **argv)
{
    /* A solve holds its handler thread for minutes: few threads, and no more deliveries held
     * than threads, unless the operator says otherwise. */
    setenv("SY_HANDLER_THREADS", "2", 0);
    setenv("SY_PREFETCH", "2", 0);
    return sy_worker_main(&optimizer_handler, argc, argv);
}
