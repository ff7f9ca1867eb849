-- Redis' clock in ms, read through a key so that on Cluster it is the clock of the node
-- that will run the decision. KEYS[1] any key (not read).
return now_ms()
