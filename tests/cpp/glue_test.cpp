#include <gtest/gtest.h>

#include "mongoose_ffi.h"
TEST(Glue, Version) {
  EXPECT_EQ(mgffi_abi_version(), MGFFI_ABI_VERSION);
}
