// The wrappers are inline in CCurl.h; SwiftPM needs one source file for a C target.
#include "CCurl.h"
