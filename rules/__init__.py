"""Alert rules: a pure engine (readings, events and the clock in; alert transitions out)."""
