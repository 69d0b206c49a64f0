"""What both roles use; ``protocol`` is the wire to the host."""
