// Umbrella header.
#pragma once
#include "tether/client.hpp"
#include "tether/close_info.hpp"
#include "tether/loop.hpp"
#include "tether/message.hpp"
#include "tether/options.hpp"
#include "tether/server.hpp"
