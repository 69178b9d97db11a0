/* placeholder: being written */
#include "tally/render.h"
#include "tally/routes.h"
void route_counter_svg(struct route_ctx *c) { http_respond_error(c->r, 404, "not yet"); }
void route_pixel(struct route_ctx *c) { http_respond_error(c->r, 404, "not yet"); }
void route_tally_js(struct route_ctx *c) { http_respond_error(c->r, 404, "not yet"); }
void route_front_page(struct route_ctx *c) { http_respond_error(c->r, 404, "not yet"); }
