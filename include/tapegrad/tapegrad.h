/*
 * tapegrad/tapegrad.h - the umbrella header: everything a user needs.
 *
 *   #include <tapegrad/tapegrad.h>
 *   cc prog.c $(pkg-config --cflags --libs tapegrad)
 */
#ifndef TAPEGRAD_TAPEGRAD_H
#define TAPEGRAD_TAPEGRAD_H

#include "status.h"
#include "tensor.h"
#include "tape.h"
#include "ops.h"
#include "gradcheck.h"
#include "jacobian.h"
#include "grad.h"
#include "graph.h"
#include "trace.h"
#include "params.h"
#include "checkpoint.h"
#include "dataset.h"
#include "nn.h"
#include "model.h"
#include "hook.h"
#include "custom_op.h"
#include "recompute.h"
#include "threads.h"

#define TAPEGRAD_VERSION "0.1.0"

#endif
