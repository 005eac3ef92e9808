"""Chess with implicit search (DiffuSearch): data, encoding, agents, evaluation and play."""
