// Placeholder entry point; the simulator is built out in its own change.
return 0;
