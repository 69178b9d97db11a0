/* tallyctl: being written */
#include <stdio.h>
int main(void) { fprintf(stderr, "tallyctl: not built yet\n"); return 1; }
