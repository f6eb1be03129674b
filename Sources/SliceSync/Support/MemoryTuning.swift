import CSliceSyncSystem

/// Settings of the C allocator for the command-line programs (see `tuneMemoryAllocator` in CLISupport).
public enum MemoryTuning {
    /// Two malloc arenas, and blocks of 128 KiB or more always mapped, so freed buffers go back to
    /// the system at once.
    public static func keepAllocatorSmall() {
        slicesync_tune_allocator(2, 128 * 1024)
    }
}
