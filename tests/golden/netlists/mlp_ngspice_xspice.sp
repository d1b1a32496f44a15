* ActorSubckt: exported by buckbi (ngspice dialect, xspice structure)
* Linear(3->4) relu Linear(4->2) softplus(beta=2.0,threshold=5.0) Linear(2->1) sigmoid
* inputs 3, outputs 1
* one buckbi_mlp element: ngspice with buckbi's code model only (python -m buckbi.xspice build)
.control
pre_codemodel /opt/buckbi/buckbi.cm
set xtrtol=7
.endc
.subckt ActorSubckt NNIN1 NNIN2 NNIN3 NNOUT1
AActorSubckt_net [NNIN1 NNIN2 NNIN3] [NNOUT1] ActorSubckt_net
.model ActorSubckt_net buckbi_mlp(prog=[
+ 1.0 3.0 4.0 0 0 0 -0.04295347237243177 -0.037510545938351535
+ 0.02799053493639977 0.09146714817639166 -0.01611091479625001 -0.09789378075220902 -0.04280141908858727 0.16558569875793214 0.10885346064503104 0
+ 0.625775991836759 -0.7956018091961145 0.6577940201602692 2.0 1.0 0 0 1.0
+ 4.0 2.0 0 0.6958325505256653 -0.6866766214370728 -0.018191415816545486 0.7046286463737488 -0.6771655678749084
+ -0.03637342154979706 0.7130603790283203 0 0.7081193923950195 2.0 9.0 2.0 5.0
+ 1.0 2.0 1.0 0 -0.6485015749931335 0 2.0 2.0
+ 0 0
+ ])
.ends ActorSubckt
