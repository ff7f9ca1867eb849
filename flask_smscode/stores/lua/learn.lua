-- Receipts teach the guard (core/deliveries.py): a delivery report said the number does not
-- exist, is blocked or cannot be reached, so the send counts against its number prefix once
-- more, like an unverified send. No source: the report does not say who asked for the send,
-- so it never adds a source (one address still cannot close a prefix for everyone).
-- KEYS[1] the prefix's hash. ARGV: conversion window_ms
local now = now_ms()
local window = tonumber(ARGV[1])
if window <= 0 then
  return 0
end
local x = hload(KEYS[1], now)
conv_add(x, window, now, 1, 0)
hsave(x)
return 1
