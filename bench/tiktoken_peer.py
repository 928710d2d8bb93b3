# The peer of bench_tokenizer: tiktoken's GPT-2 encoding, built offline from encoder.json and
# vocab.bpe, timed on one thread and on N threads; writes both id sequences for the exactness check.
import array
import os
import statistics
import sys
import time

os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local files, never a cache or the network
import tiktoken  # noqa: E402
from tiktoken.load import data_gym_to_mergeable_bpe_ranks  # noqa: E402
from tiktoken_ext.openai_public import r50k_pat_str  # noqa: E402


def gpt2_encoding(gpt2_dir):
    ranks = data_gym_to_mergeable_bpe_ranks(
        os.path.join(gpt2_dir, "vocab.bpe"), os.path.join(gpt2_dir, "encoder.json"))
    return tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def shares(text, n):
    """n pieces cut where an ASCII non-space is followed by a space: no pre-token spans such a
    cut, so the pieces' ids joined are the ids of the whole text (the rule bench_tokenizer's
    encoder uses)."""
    cuts = [0]
    for i in range(1, n):
        pos, limit = max(len(text) * i // n, cuts[-1] + 1), len(text) * (i + 1) // n
        while pos < limit and not (text[pos] == " " and text[pos - 1].isascii()
                                   and not text[pos - 1].isspace()):
            pos += 1
        if pos < limit:
            cuts.append(pos)
    cuts.append(len(text))
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]


def median_seconds(run, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def write_ids(path, ids):
    ints = array.array("i", ids)
    if sys.byteorder != "little":
        ints.byteswap()
    with open(path, "wb") as f:
        f.write(ints.tobytes())


def main():
    if len(sys.argv) != 7:
        sys.exit("usage: tiktoken_peer.py GPT2_DIR TEXT_FILE THREADS REPS IDS_ONE IDS_ALL")
    gpt2_dir, text_file, threads, reps, ids_one, ids_all = sys.argv[1:]
    threads, reps = int(threads), int(reps)
    enc = gpt2_encoding(gpt2_dir)
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    pieces = shares(text, threads)
    one, ids = median_seconds(lambda: enc.encode_ordinary(text), reps)
    all_, batches = median_seconds(lambda: enc.encode_ordinary_batch(pieces, num_threads=threads),
                                   reps)
    write_ids(ids_one, ids)
    write_ids(ids_all, [i for batch in batches for i in batch])
    print(f"{tiktoken.__version__} {one:.6f} {all_:.6f}")


if __name__ == "__main__":
    main()
