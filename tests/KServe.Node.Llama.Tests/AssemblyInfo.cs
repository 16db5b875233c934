// The engines under test each run llama.cpp threads; running test classes in parallel on a small machine
// oversubscribes the cores and slows decoding by orders of magnitude.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
