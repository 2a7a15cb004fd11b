// SHA-256 compression on two independent messages at once with the x86 SHA extensions. One
// stream waits on the latency of each round instruction; two streams fill those waits.
#pragma once
#include <cstddef>
#include <cstdint>

namespace strata {

// True when this CPU has the SHA extensions and SSE4.1 (checked once with cpuid).
bool Sha256NiAvailable();

// Runs `blocks` 64-byte blocks of a into stateA and of b into stateB. States are the eight
// SHA-256 working words a..h in host order. Call only when Sha256NiAvailable().
void Sha256NiCompress2(uint32_t stateA[8], const uint8_t* a, uint32_t stateB[8], const uint8_t* b, size_t blocks);

}  // namespace strata
