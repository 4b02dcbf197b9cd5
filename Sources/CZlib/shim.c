// The wrappers are inline in CZlib.h; SwiftPM needs one source file for a C target.
#include "CZlib.h"
