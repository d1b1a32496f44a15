* ActorSubckt: exported by buckbi (ltspice dialect, fast structure)
* Linear(2->2) tanh gru(2->2)
* inputs 2, outputs 2; ports: inputs, CLK, outputs; after rising CLK edge t the outputs are f(x[t], h[t-1]), the state updated on that edge
.subckt ActorSubckt NNIN1 NNIN2 CLK NNOUT1 NNOUT2
.model BUCKBI_TRACKLOW SW(Vt=-0.4 Vh=0 Ron=1m Roff=1e30)
.model BUCKBI_TRACKHIGH SW(Vt=0.6 Vh=0 Ron=1m Roff=1e30)
Bbuckbi_one buckbi_one 0 V=1
Sbuckbi_startedm buckbi_one buckbi_started_m 0 CLK BUCKBI_TRACKLOW
Cbuckbi_startedm buckbi_started_m 0 1n
Ebuckbi_startedb buckbi_started_b 0 buckbi_started_m 0 1
Sbuckbi_starteds buckbi_started_b buckbi_started CLK 0 BUCKBI_TRACKHIGH
Cbuckbi_starteds buckbi_started 0 1n
Rbuckbi_starteds buckbi_started 0 1e15
RL1_1 L1_1 0 1
GL1_1_1 0 L1_1 NNIN2 0 0.7839264273643494
RL1_2 L1_2 0 1
GL1_2_1 0 L1_2 NNIN1 0 0.3127078115940094
GL1_2_2 0 L1_2 NNIN2 0 -0.6591874957084656
IL1_2 0 L1_2 0.2892923355102539
BL2_1 L2_1 0 V=tanh(V(L1_1))
BL2_2 L2_2 0 V=tanh(V(L1_2))
RL3rs_1 L3rs_1 0 1
GL3rs_1_1 0 L3rs_1 L2_2 0 -0.6331637501716614
GL3rs_1_2 0 L3rs_1 L3h_2 0 -0.7535642385482788
RL3rs_2 L3rs_2 0 1
GL3rs_2_1 0 L3rs_2 L2_1 0 -0.7740145921707153
GL3rs_2_2 0 L3rs_2 L2_2 0 -0.3130348026752472
GL3rs_2_3 0 L3rs_2 L3h_1 0 0.506000816822052
GL3rs_2_4 0 L3rs_2 L3h_2 0 0.41379645466804504
IL3rs_2 0 L3rs_2 0.3766809552907944
BL3r_1 L3r_1 0 V=0.5+0.5*tanh(0.5*V(L3rs_1))
BL3r_2 L3r_2 0 V=0.5+0.5*tanh(0.5*V(L3rs_2))
RL3zs_1 L3zs_1 0 1
GL3zs_1_1 0 L3zs_1 L2_1 0 0.39134347438812256
GL3zs_1_2 0 L3zs_1 L2_2 0 0.7914348244667053
GL3zs_1_3 0 L3zs_1 L3h_1 0 -0.7838554978370667
GL3zs_1_4 0 L3zs_1 L3h_2 0 0.11254429072141647
IL3zs_1 0 L3zs_1 -0.44682174921035767
RL3zs_2 L3zs_2 0 1
GL3zs_2_1 0 L3zs_2 L2_1 0 0.5761505365371704
GL3zs_2_2 0 L3zs_2 L2_2 0 -0.08711637556552887
GL3zs_2_3 0 L3zs_2 L3h_1 0 0.7082846164703369
GL3zs_2_4 0 L3zs_2 L3h_2 0 -0.5881409645080566
IL3zs_2 0 L3zs_2 0.08234637975692749
BL3z_1 L3z_1 0 V=0.5+0.5*tanh(0.5*V(L3zs_1))
BL3z_2 L3z_2 0 V=0.5+0.5*tanh(0.5*V(L3zs_2))
RL3xn_1 L3xn_1 0 1
GL3xn_1_1 0 L3xn_1 L2_1 0 -0.6826463937759399
GL3xn_1_2 0 L3xn_1 L2_2 0 -0.7473886013031006
IL3xn_1 0 L3xn_1 0.6333808302879333
RL3xn_2 L3xn_2 0 1
GL3xn_2_1 0 L3xn_2 L2_1 0 -0.23100300133228302
GL3xn_2_2 0 L3xn_2 L2_2 0 0.46499767899513245
IL3xn_2 0 L3xn_2 -0.7275857329368591
RL3hn_1 L3hn_1 0 1
GL3hn_1_1 0 L3hn_1 L3h_1 0 -0.3133617043495178
GL3hn_1_2 0 L3hn_1 L3h_2 0 0.7985560297966003
IL3hn_1 0 L3hn_1 -0.04415518045425415
RL3hn_2 L3hn_2 0 1
GL3hn_2_1 0 L3hn_2 L3h_1 0 -0.22285008430480957
GL3hn_2_2 0 L3hn_2 L3h_2 0 -0.6489173769950867
IL3hn_2 0 L3hn_2 -0.525321364402771
BL3n_1 L3n_1 0 V=tanh(V(L3xn_1)+V(L3r_1)*V(L3hn_1))
BL3n_2 L3n_2 0 V=tanh(V(L3xn_2)+V(L3r_2)*V(L3hn_2))
BL3new_1 L3new_1 0 V=(1-V(L3z_1))*V(L3n_1)+V(L3z_1)*V(L3h_1)
BL3new_2 L3new_2 0 V=(1-V(L3z_2))*V(L3n_2)+V(L3z_2)*V(L3h_2)
BL3hg_1 L3hg_1 0 V=V(L3new_1)*V(buckbi_started)
SL3h_1m L3hg_1 L3h_1_m 0 CLK BUCKBI_TRACKLOW
CL3h_1m L3h_1_m 0 1n
EL3h_1b L3h_1_b 0 L3h_1_m 0 1
SL3h_1s L3h_1_b L3h_1 CLK 0 BUCKBI_TRACKHIGH
CL3h_1s L3h_1 0 1n
RL3h_1s L3h_1 0 1e15
BL3hg_2 L3hg_2 0 V=V(L3new_2)*V(buckbi_started)
SL3h_2m L3hg_2 L3h_2_m 0 CLK BUCKBI_TRACKLOW
CL3h_2m L3h_2_m 0 1n
EL3h_2b L3h_2_b 0 L3h_2_m 0 1
SL3h_2s L3h_2_b L3h_2 CLK 0 BUCKBI_TRACKHIGH
CL3h_2s L3h_2 0 1n
RL3h_2s L3h_2 0 1e15
ENNOUT1 NNOUT1 0 L3new_1 0 1
ENNOUT2 NNOUT2 0 L3new_2 0 1
.ends ActorSubckt
