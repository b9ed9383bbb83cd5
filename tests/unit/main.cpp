// The one Catch2 main; every *_test.cpp under tests/unit is linked into this binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
