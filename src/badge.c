/* placeholder: being written */
#include "tally/render.h"
#include "tally/routes.h"
