package io.inf2.csd;

/**
 * What a KV region holds: the cache of one KV head of one sequence in one layer, as pages of
 * {@code pageTokens} tokens. A page holds, token after token, the token's key then its value, fp16
 * little-endian: {@code [k₀ v₀ k₁ v₁ ...]}, each {@code headDim} values. So consecutive pages are one
 * uniform run of rows, and a read of several pages is attended in one pass.
 *
 * @param sequence      the engine's identifier of the sequence (its slot); used in messages only
 * @param capacityPages pages the region can hold; appends beyond it are refused
 */
public record RegionSpec(int layer, int sequence, int kvHead, int headDim, int pageTokens, int capacityPages) {

    public RegionSpec {
        if (layer < 0 || sequence < 0 || kvHead < 0 || headDim <= 0 || pageTokens <= 0 || capacityPages <= 0) {
            throw new IllegalArgumentException("invalid region: layer " + layer + ", sequence " + sequence + ", kv head "
                    + kvHead + ", headDim " + headDim + ", page tokens " + pageTokens + ", capacity " + capacityPages + " pages");
        }
    }

    /** Bytes of one page: keys and values of {@code pageTokens} tokens, 2 bytes per element. */
    public long pageBytes() {
        return 4L * pageTokens * headDim;
    }

    public long capacityBytes() {
        return pageBytes() * capacityPages;
    }

    @Override
    public String toString() {
        return "layer " + layer + " sequence " + sequence + " kv head " + kvHead;
    }
}
