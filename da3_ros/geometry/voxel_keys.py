"""Voxel keys shared by the host (numpy) and GPU (torch) voxel averaging of point clouds.

A voxel index (kx, ky, kz) = floor(xyz / edge) packs into one int64, 21 bits per axis after a
bias, so that sorting the packed keys orders voxels as sorting the rows (kx, ky, kz) would:
a 1-D sort instead of a row sort. Valid while every |index| < VOXEL_KEY_BIAS (2**20: about
100 km at 0.1 m voxels); callers fall back to a row sort beyond that.
"""

VOXEL_KEY_BIAS = 1 << 20


def pack_voxel_keys(keys):
    """(N, 3) int64 voxel indices (numpy or torch), all |index| < VOXEL_KEY_BIAS -> (N,)
    int64 keys in the same order as the rows."""
    b = keys + VOXEL_KEY_BIAS
    return (b[:, 0] << 42) | (b[:, 1] << 21) | b[:, 2]
