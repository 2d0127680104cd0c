package dev.tandem.core.standby;

import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.FileVirtualDisk;

import java.nio.file.Path;

/**
 * Opens the standby's image of one guest disk. The default opens (or creates) a {@link FileVirtualDisk} at the
 * path and refuses an existing image of another size; a VMM may place images elsewhere, and tests wrap the disk to
 * inject the machine's faults (a full disk, a failing device) into the standby's apply.
 */
@FunctionalInterface
public interface DiskImageOpener
{
    /** Opens {@code disk-<id>.img} in the standby's directory, refusing an existing image of another size. */
    DiskImageOpener DEFAULT = (path, disk) ->
        new FileVirtualDisk(path, disk.id(), disk.blockSize(), disk.sizeBytes(), false);

    /**
     * @param path where the standby keeps the image.
     * @param disk the disk's id, block size and size, as the active will describe it.
     * @return the open image; the standby closes it.
     */
    FileVirtualDisk open(Path path, Handshake.Disk disk);
}
