"""TinyWorld: a synthetic world with known ground truth, and the small transformers trained on it.

    world.py    the seeded generator of entities and facts (data/tinyworld/world.json)
    tasks.py    every text the models read: facts in several phrasings, chat, refusal, JSON, notes, tools, maths
    train.py    builds the tokenizer and trains every checkpoint (python -m utils.tinyworld.train)
    card.py     measures every behaviour against its bar (python -m utils.tinyworld.card)
"""
